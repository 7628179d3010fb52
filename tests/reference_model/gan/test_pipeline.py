"""End to end on the real head-model layer: synthetic tiny head -> dataset -> W -> GAN -> adapter."""

import json

import pytest
import torch

from omnibench.assets import sha256_file as file_sha256
from omnibench.cameras import orbit_camera
from omnibench.cli import main
from omnibench.generators import GENERATORS
from omnibench.generators.base import Controls
from omnibench.heads import load_head_model
from reference_model.gan.data import load_training_set
from reference_model.gan.train import Trainer, export_release
from reference_model.sdf.checkpoint import load_sdf
from reference_model.sdf.config import SDFConfig
from reference_model.sdf.train import train as train_sdf
from tests.reference_model.gan.test_gan import CFG


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    data = root / "data"
    assert main(["data", "synth", "--out", str(data), "--n", "6", "--res", "16", "--head", "synthetic:tiny"]) == 0
    head = load_head_model("synthetic:tiny")
    scfg = SDFConfig(head="synthetic:tiny", n_shape=4, n_expression=4, hidden=16, layers=3, skip_layer=1,
                     pe_frequencies=2, n_param_sets=8, n_surface=32, n_off_surface=32, meshes_per_step=2, steps=2)
    w_path = train_sdf(scfg, root / "W.pt", head=head, quiet=True)
    sdf = load_sdf(w_path, head=head)
    meta = {"sha256": file_sha256(w_path), "config": sdf.cfg.to_dict(), "center": sdf.center.clone(), "radius": float(sdf.radius)}
    tr = Trainer(CFG, load_training_set(str(data)), sdf, head, meta, root / "run", quiet=True)
    ckpt = tr.run()
    release = export_release(ckpt, root / "release.pt")
    return {"root": root, "data": data, "w": w_path, "release": release, "head": head}


def test_adapter_scores_a_trained_checkpoint_through_the_entry_point(pipeline):
    cls = GENERATORS.get("omniavatar")  # resolved from the omnibench.generators entry point
    gen = cls.load(str(pipeline["release"]))
    assert gen.resolution == 16 and gen.provides_depth and gen.head_model == "synthetic:tiny"
    ds = load_training_set(str(pipeline["data"]))
    controls = Controls(ds.camera[:3], ds.shape[:3], ds.expression[:3], ds.pose[:3])
    out = gen.synthesize(torch.randn(3, gen.z_dim), controls)
    assert out.image.shape == (3, 3, 16, 16) and out.depth.shape == (3, 16, 16)
    again = gen.synthesize(torch.randn(3, gen.z_dim, generator=torch.Generator().manual_seed(0)), controls)
    same = gen.synthesize(torch.randn(3, gen.z_dim, generator=torch.Generator().manual_seed(0)), controls)
    assert torch.equal(again.image, same.image)


def test_adapter_conditions_the_mapping_on_one_frontal_camera_so_a_latent_is_one_person_in_every_view(pipeline):
    from reference_model.adapter import conditioning_camera

    gen = GENERATORS.get("omniavatar").load(str(pipeline["release"]))
    planes = []
    hook = gen.G.synthesis.register_forward_hook(lambda mod, args, out: planes.append(out))
    ds = load_training_set(str(pipeline["data"]))
    z = torch.randn(2, gen.z_dim, generator=torch.Generator().manual_seed(3))
    for yaw in (-0.5, 0.0, 0.5):
        cam = orbit_camera(torch.full((2,), yaw), torch.zeros(2))
        gen.synthesize(z, Controls(cam, ds.shape[:2], ds.expression[:2], ds.pose[:2]))
    hook.remove()
    assert torch.equal(planes[0], planes[1]) and torch.equal(planes[0], planes[2])  # tri-planes do not follow the view
    w_front = gen.G.mapping(z, conditioning_camera(2), 1.0, False)
    w_side = gen.G.mapping(z, orbit_camera(torch.full((2,), 0.5), torch.zeros(2)), 1.0, False)
    assert not torch.equal(w_front, w_side)  # the mapping does read its camera: the adapter fixes which one
    assert gen.describe()["pose_conditioning"] == "frontal"


def test_release_checkpoint_has_no_training_state_and_records_provenance(pipeline):
    ck = torch.load(pipeline["release"], weights_only=True)
    assert "training" not in ck
    assert ck["sdf"]["sha256"] == file_sha256(pipeline["w"])
    assert ck["head_model"]["sha256"] == pipeline["head"].sha256
    assert ck["dataset"]["content_hash"]


def test_cli_refuses_to_overwrite_a_run_without_resume(pipeline, capsys):
    assert main(["train", "gan", "--data", str(pipeline["data"]), "--sdf", str(pipeline["w"]),
                 "--out", str(pipeline["root"] / "run")]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(["train", "gan", "--data", str(pipeline["data"]), "--sdf", str(pipeline["root"] / "missing.pt"),
                 "--out", str(pipeline["root"] / "new")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_evaluate_picks_the_adapter_from_the_checkpoint_header(pipeline, capsys):
    out = pipeline["root"] / "result.json"
    code = main(["evaluate", "--ckpt", str(pipeline["release"]), "--protocol", "quick", "--metrics", "mv-reproj@depth",
                 "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    assert res["checkpoint"]["generator"] == "omniavatar"
    assert res["metrics"]["mv-reproj@depth"]["n"] > 0


def test_cli_trains_an_encoder_file_and_train_gan_refuses_a_foreign_one(pipeline, capsys):
    from reference_model.gan.encoder_training import load_encoder

    root, data = pipeline["root"], str(pipeline["data"])
    code = main(["train", "gan-encoder", "--data", f"{data},{data}", "--finish-data", data, "--heldout", data,
                 "--aligned", "--steps", "2", "--batch", "4", "--photometric", "0.3", "--sdf", str(pipeline["w"]),
                 "--out", str(root / "E.pt")])
    assert code == 0, capsys.readouterr().err
    E, meta = load_encoder(root / "E.pt", head=pipeline["head"])
    assert E.aligned and meta["recipe"]["finish_fraction"] == 0.25 and len(meta["data"]) == 2
    assert meta["recipe"]["photometric"] == 0.3 and set(meta["heldout"]["tint_shift"]) == {"brighter", "darker", "warm", "cool", "whiter"}
    assert meta["heldout"]["n"] == 6 and len(meta["heldout"]["expression_r2"]) == E.n_expression
    assert main(["train", "gan-encoder", "--data", data, "--photometric", "1.5", "--out", str(root / "E2.pt")]) == 2
    assert "--photometric must be in [0, 1)" in capsys.readouterr().err and not (root / "E2.pt").exists()
    assert main(["train", "gan", "--data", data, "--sdf", str(pipeline["w"]), "--encoder", str(pipeline["release"]),
                 "--out", str(root / "new-e")]) == 2
    err = capsys.readouterr().err
    assert "not a control encoder" in err and "Traceback" not in err
