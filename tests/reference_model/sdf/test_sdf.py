import numpy as np
import pytest
import torch

from omnibench.errors import CheckpointError
from reference_model.sdf.checkpoint import load_sdf, save_sdf
from reference_model.sdf.config import SDFConfig
from reference_model.sdf.data import SDFDataSource, signed_distance
from reference_model.sdf.losses import stage1_losses
from reference_model.sdf.model import SemanticSDF, sdf_and_gradient, softplus_inplace
from reference_model.sdf.train import build_model, step_losses, train

TINY = SDFConfig(n_param_sets=16, n_surface=64, n_off_surface=64, meshes_per_step=2, hidden=32, layers=4,
                 skip_layer=2, steps=3, log_every=1, ckpt_every=3)


class AnalyticSphereW(torch.nn.Module):
    """W for a sphere of radius r(p) = 0.1 * (1 + p0): s = |x| - r, xbar = x * 0.1 / r."""

    def forward_cond(self, x, cond):
        r = 0.1 * (1 + cond[:, :1])[:, :, None]
        n = x.norm(dim=-1, keepdim=True)
        return (n - r)[..., 0], x * 0.1 / r


def test_losses_vanish_for_an_exact_sphere_sdf():
    torch.manual_seed(0)
    cond = torch.tensor([[0.2], [-0.1]])
    r = 0.1 * (1 + cond)[:, :, None]
    d = torch.nn.functional.normalize(torch.randn(2, 50, 3), dim=-1)
    surf = d * r
    off = torch.randn(2, 40, 3) * 0.1
    s, xbar, g = sdf_and_gradient(AnalyticSphereW(), surf, cond)
    s_off, _, g_off = sdf_and_gradient(AnalyticSphereW(), off, cond)
    terms = stage1_losses(s, g, xbar, d, d * 0.1, s_off, g_off, off.norm(dim=-1) - r[..., 0], SDFConfig())
    for k, v in terms.items():
        assert float(v.detach()) < (1e-3 if k == "total" else 1e-5), k  # total is weighted by up to 3000
    # and the same losses see a wrong normal / correspondence
    bad = stage1_losses(s, g, xbar * 1.1, -d, d * 0.1, s_off, g_off, off.norm(dim=-1) - r[..., 0], SDFConfig())
    assert float(bad["normal"].detach()) > 1.0 and float(bad["semantic"].detach()) > 1e-3


def test_data_signed_distance_and_correspondence(sphere_head):
    src = SDFDataSource(sphere_head, TINY)
    b = src.training_batch(0)
    assert b.surface.shape == (2, 64, 3) and b.off_sdf.shape == (2, 64)
    # surface points of the unjawed upper half lie at radius r; canonical targets at radius 0.1
    for m in range(2):
        upper = b.surface[m, :, 1] > 0.01
        r = b.surface[m].norm(dim=-1)[upper]
        assert torch.allclose(r, r.mean().expand_as(r), rtol=0.02)
    assert torch.allclose(b.canonical.norm(dim=-1), torch.full_like(b.canonical[..., 0], 0.1), rtol=0.02)
    # sign: negative inside (deep inside points)
    s = signed_distance(np.zeros((1, 3)), sphere_head.template.numpy().astype(float), sphere_head.faces.numpy())
    assert s[0] < -0.09
    # deterministic per step, independent of worker
    assert torch.equal(src.training_batch(5).off, SDFDataSource(sphere_head, TINY).training_batch(5).off)
    assert not torch.equal(src.training_batch(5).off, src.training_batch(6).off)
    # ranks draw disjoint slots of the same step
    assert not torch.equal(src.training_batch(5, 0, 2).surface, src.training_batch(5, 1, 2).surface)


def test_gradients_flow_to_every_parameter(sphere_head):
    src = SDFDataSource(sphere_head, TINY)
    model = build_model(TINY, src)
    # the geometric init starts conditioning weights at zero: take one step so they move
    terms = step_losses(model, src.training_batch(0), TINY, torch.device("cpu"))
    terms["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert model.layers[0].weight.grad[:, -model.n_cond:].abs().sum() > 0


def test_training_step_is_deterministic_and_checkpoint_round_trips(tmp_path, sphere_head):
    a = train(TINY, tmp_path / "new" / "dir" / "a.pt", head=sphere_head, quiet=True)
    b = train(TINY, tmp_path / "b.pt", head=sphere_head, quiet=True)
    ma, mb = load_sdf(a, head=sphere_head), load_sdf(b, head=sphere_head)
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values()):
        assert torch.equal(va, vb), k
    x = torch.randn(1, 10, 3) * 0.1
    cond = torch.zeros(1, ma.n_cond)
    assert torch.equal(ma.forward_cond(x, cond)[0], mb.forward_cond(x, cond)[0])
    assert ma.sdf_checkpoint["step"] == 3 and ma.sdf_checkpoint["head_model"]["sha256"] == "sphere-v1"
    # resume continues from the saved step
    more = TINY.with_overrides(steps=5)
    train(more, a, head=sphere_head, resume=True, quiet=True)
    assert load_sdf(a).sdf_checkpoint["step"] == 5


def test_checkpoint_of_another_head_model_is_refused(tmp_path, sphere_head):
    from tests.reference_model.sdf.conftest import SphereHead

    src = SDFDataSource(sphere_head, TINY)
    p = tmp_path / "w.pt"
    save_sdf(p, build_model(TINY, src), sphere_head, step=0)
    with pytest.raises(CheckpointError, match="trained on head model 'sphere'"):
        load_sdf(p, head=SphereHead(sha="other"))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_corrupt_or_foreign_checkpoints_are_refused(tmp_path, content):
    p = tmp_path / "bad.pt"
    if content is None:
        torch.save({"kind": "omnibench.gan", "format": 1}, p)
    else:
        p.write_bytes(content)
    with pytest.raises(CheckpointError):
        load_sdf(p)


def test_holes_are_capped_so_the_sign_is_defined_everywhere():
    """A sphere with a cap cut away (like FLAME's neck and mouth): one boundary loop, closed by a fan, after
    which no boundary is left and a point just inside the former hole is inside."""
    import trimesh

    from reference_model.sdf.data import boundary_loops, cap_faces, with_cap_centroids

    m = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    keep = m.triangles_center[:, 1] > -0.08  # cut the bottom cap: a hole of radius ~6 cm
    faces = m.faces[keep]
    loops = boundary_loops(faces)
    assert len(loops) == 1 and len(loops[0]) > 6
    capped = cap_faces(faces, loops, len(m.vertices))
    verts = with_cap_centroids(np.asarray(m.vertices), loops)
    assert boundary_loops(capped) == [] and verts.shape == (len(m.vertices) + 1, 3)
    closed = trimesh.Trimesh(verts, capped, process=False)
    assert closed.is_watertight and closed.is_winding_consistent and closed.volume > 0  # outward normals
    probe = np.array([[0.0, -0.075, 0.0], [0.0, -0.09, 0.0], [0.0, 0.0, 0.0]])  # above the cap, below, centre
    s = signed_distance(probe, verts, capped)
    assert s[0] < 0 < s[1] and s[2] < -0.07


def test_head_is_the_union_of_its_closed_components(sphere_head):
    """Like the eyeballs poking through FLAME's skin: a small sphere half inside a big one. Surface samples
    lie on the union's boundary only, and the signed distance is the union's (min over components)."""
    import trimesh

    from reference_model.sdf.data import face_components

    big = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    small = trimesh.creation.icosphere(subdivisions=2, radius=0.03)
    small_v = np.asarray(small.vertices) + [0.1, 0.0, 0.0]  # centred on the big sphere's surface
    verts = torch.tensor(np.concatenate([big.vertices, small_v]), dtype=torch.float32)
    faces = torch.tensor(np.concatenate([big.faces, small.faces + len(big.vertices)]), dtype=torch.int64)

    class TwoSpheres(torch.nn.Module):
        name, sha256 = "two-spheres", "two"

        def __init__(self):
            super().__init__()
            self.faces = faces

        def forward(self, shape, expression, pose, translation=None):
            return type("Out", (), {"vertices": verts[None].expand(shape.shape[0], -1, -1)})()

    src = SDFDataSource(TwoSpheres(), TINY.with_overrides(n_surface=400, n_off_surface=400))
    assert [len(c) for c in src.components] == [len(big.faces), len(small.faces)]
    assert [len(c) for c in face_components(faces.numpy(), len(verts))] == [len(big.faces), len(small.faces)]
    b = src.training_batch(0)
    p = b.surface.reshape(-1, 3).double()
    in_big = p.norm(dim=1) < 0.1 - 2e-3
    in_small = (p - torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64)).norm(dim=1) < 0.03 - 2e-3
    assert not (in_big | in_small).any()  # no sample on a part of a sphere that lies inside the other
    probe = np.array([[0.12, 0.0, 0.0], [0.095, 0.0, 0.0], [0.0, 0.0, 0.0], [0.2, 0.0, 0.0]])
    s = src.signed_distance(probe, verts.double().numpy())
    assert s[0] == pytest.approx(-0.01, abs=2e-3) and s[1] < 0 and s[2] < -0.09 and s[3] == pytest.approx(0.07, abs=2e-3)


def test_softplus_inplace_matches_softplus():
    x = torch.cat([torch.linspace(-1, 1, 20001), torch.tensor([-50.0, -0.3, 0.0, 1e-6, 0.3, 50.0])])
    ref = torch.nn.functional.softplus(x.double(), beta=100)
    out = softplus_inplace(x.clone(), 100.0)
    assert (out.double() - ref).abs().max() < 2e-8  # float32 rounding of values up to 1 plus ~6e-8 / beta
    assert torch.equal(out, out.clamp(min=0)) and out[-1] == 50.0


def test_inference_path_is_the_same_function():
    """Without autograd W folds its conditioning per batch element and uses softplus_inplace: same s, xbar."""
    torch.manual_seed(0)
    model = SemanticSDF(SDFConfig(hidden=32, layers=4, skip_layer=2), np.zeros(3, dtype=np.float32), 0.15)
    for p in model.parameters():  # geometric init leaves the conditioning and xbar weights at zero
        p.data.add_(0.05 * torch.randn_like(p))
    x, cond = 0.2 * torch.randn(3, 500, 3), torch.randn(3, model.n_cond)
    s_ref, xbar_ref = model.forward_cond(x, cond)  # autograd path
    with torch.no_grad():
        s, xbar = model.forward_cond(x, cond)
    assert s_ref.requires_grad and not s.requires_grad
    assert torch.allclose(s, s_ref.detach(), atol=1e-6) and torch.allclose(xbar, xbar_ref.detach(), atol=1e-6)
    assert float((xbar_ref - x).abs().max()) > 1e-3  # the conditioning and xbar columns are exercised


def test_inference_path_in_chunks_equals_one_pass(monkeypatch):
    """On CPU the inference path runs the points in cache-sized chunks: the same numbers as one pass."""
    import reference_model.sdf.model as sdf_model

    torch.manual_seed(0)
    model = SemanticSDF(SDFConfig(hidden=32, layers=4, skip_layer=2), np.zeros(3, dtype=np.float32), 0.15)
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    x, cond = 0.2 * torch.randn(3, 500, 3), torch.randn(3, model.n_cond)
    with torch.no_grad():
        monkeypatch.setattr(sdf_model, "INFERENCE_CHUNK_POINTS", 10**9)
        s_one, xbar_one = model.forward_cond(x, cond)
        monkeypatch.setattr(sdf_model, "INFERENCE_CHUNK_POINTS", 3 * 64)  # 64 points an image, last chunk short
        s, xbar = model.forward_cond(x, cond)
    assert s.shape == (3, 500) and xbar.shape == (3, 500, 3)
    assert torch.allclose(s, s_one, atol=1e-7, rtol=0) and torch.allclose(xbar, xbar_one, atol=1e-7, rtol=0)


def test_positional_encoding_matches_sin_cos_of_every_octave():
    """encode() computes most octaves by double-angle recurrences: still sin/cos(2^k u) to 1e-6."""
    model = SemanticSDF(SDFConfig(pe_frequencies=6), np.zeros(3, dtype=np.float32), 0.15)
    u = (torch.rand(20000, 3, generator=torch.Generator().manual_seed(0)) - 0.5) * 4
    ref = [u.double()]
    for k in range(6):
        ref += [torch.sin((2.0**k) * u.double()), torch.cos((2.0**k) * u.double())]
    pe = model.encode(u)
    assert pe.shape == (20000, 39) and (pe.double() - torch.cat(ref, -1)).abs().max() < 1e-6


class _ExpressiveSphere(torch.nn.Module):
    """The sphere stand-in whose cap above y = 0.07 m moves forward by 1 cm per unit of expression[0]."""

    def __init__(self, base) -> None:
        super().__init__()
        self.base, self.faces, self.name, self.sha256 = base, base.faces, "sphere-expr", "sphere-expr-v1"
        self.cap = base.template[:, 1] > 0.07

    def forward(self, shape, expression, pose, translation=None):
        out = self.base(shape, expression, pose)
        move = self.cap[None, :, None].float() * expression[:, :1, None] * torch.tensor([0.0, 0.0, 0.01])
        out.vertices = out.vertices + move
        return out


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_mobile_fraction_draws_that_share_of_surface_points_where_expression_moves_the_surface(sphere_head, fraction):
    from dataclasses import replace

    head = _ExpressiveSphere(sphere_head)
    cfg = replace(TINY, n_surface=400, n_expression=1, mobile_fraction=fraction)
    src = SDFDataSource(head, cfg)
    if fraction == 0.0:
        assert src.face_mobility is None
        mobility = SDFDataSource(head, replace(cfg, mobile_fraction=1.0)).face_mobility
    else:
        mobility = src.face_mobility
        # a face's mobility is its corners' mean displacement per unit expression: 1 cm on the cap, 0 far from it
        assert mobility.max() == pytest.approx(0.01) and (mobility == 0).mean() > 0.5
    verts = src.meshes(src.params.sample(np.array([0])))[0]
    fid, bary, pts, _, _ = src._mesh_points(verts, np.random.default_rng(0))
    assert len(fid) == 400 and np.allclose(pts, np.einsum("nk,nkd->nd", bary, verts[src.faces[fid]]))
    on_mobile = (mobility[fid] > 0).mean()
    uniform_share = float((mobility > 0).mean())  # roughly: faces of an icosphere have near-equal areas
    if fraction == 1.0:
        assert on_mobile == 1.0
    else:
        assert on_mobile >= fraction + (1 - fraction) * uniform_share * 0.5
        assert on_mobile < fraction + (1 - fraction) * uniform_share * 2.0
