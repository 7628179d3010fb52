import numpy as np
import pytest
import torch
from PIL import Image
from toygen_report import ToyGenerator

from omnibench.cameras import get_framing
from omnibench.cli import main
from omnibench.generators.base import Controls
from omnibench.report import grids

TOY = ["--ckpt", "toy", "--generator", "toygen_report:ToyGenerator"]


def test_grids_vary_what_they_should():
    gen, spec = ToyGenerator(), grids.GridSpec(n_ids=3, n_expressions=4)
    views, vt = grids.view_grid(gen, spec)
    exprs, et = grids.expression_grid(gen, spec)
    r = gen.resolution
    assert views.shape == (3 * r, 5 * r, 3) and exprs.shape == (3 * r, 4 * r, 3)
    assert vt[0] == "yaw -35°" and vt[2] == "frontal" and et[0] == "neutral"
    tile = lambda g, i, j: g[i * r:(i + 1) * r, j * r:(j + 1) * r]  # noqa: E731
    # the yaw-0 view and the neutral expression are the same control: identical pixels
    for i in range(3):
        assert np.array_equal(tile(views, i, 2), tile(exprs, i, 0))
    # identities differ along rows; views and expressions differ along columns
    assert not np.array_equal(tile(views, 0, 2), tile(views, 1, 2))
    assert not np.array_equal(tile(views, 0, 0), tile(views, 0, 4))
    assert not np.array_equal(tile(exprs, 0, 0), tile(exprs, 0, 1))


def test_expression_sweep_sets_one_coefficient_per_column_inside_the_protocol_prior(tmp_path):
    gen = ToyGenerator()
    spec = grids.GridSpec(n_ids=2, n_expressions=4, expression_sweep=True)
    expr, pose = grids.expressions(gen, spec)
    want = torch.zeros(4, gen.flame_layout.n_expression)
    want[1, 0] = want[2, 1] = want[3, 2] = 1.2
    assert torch.equal(expr, want) and torch.equal(pose, torch.zeros(4, 15))  # the jaw stays closed
    exprs, titles = grids.expression_grid(gen, spec)
    assert titles == ["neutral", "expr[0] +1.2", "expr[1] +1.2", "expr[2] +1.2"]
    r = gen.resolution
    assert not np.array_equal(exprs[:r, :r], exprs[:r, r:2 * r])
    assert main(["render", *TOY, "--out", str(tmp_path / "s.png"), "--ids", "1", "--expression-sweep"]) == 0
    assert main(["render", *TOY, "--out", str(tmp_path / "r.png"), "--ids", "1"]) == 0
    assert (tmp_path / "s.png").read_bytes() != (tmp_path / "r.png").read_bytes()


def test_batch_size_does_not_change_pixels():
    gen = ToyGenerator()
    z = torch.randn(5, gen.z_dim, generator=torch.Generator().manual_seed(3))
    c = Controls(torch.zeros(5, 25), torch.zeros(5, 10), torch.randn(5, 10), torch.zeros(5, 15))
    c.camera[:] = get_framing("v1").orbit(torch.linspace(-0.5, 0.5, 5), torch.zeros(5))
    assert np.array_equal(grids._synthesize(gen, z, c, 0.7, batch=1), grids._synthesize(gen, z, c, 0.7, batch=16))


def test_cli_png_and_gif_deterministic(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["render", *TOY, "--out", str(a), "--gif", "--ids", "2", "--frames", "6"]) == 0
    assert main(["render", *TOY, "--out", str(b), "--ids", "2"]) == 0
    assert a.read_bytes() == b.read_bytes()
    with Image.open(a) as im:
        assert im.width > 5 * 96 and im.height > 2 * 2 * 96  # small cells are upscaled
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 6 and gif.width == 2 * 32


@pytest.mark.parametrize("args, message", [
    (["--out", "x.jpg"], "--out must end in .png"),
    (["--out", "x.png", "--ids", "0"], "must be >= 1"),
])
def test_cli_bad_arguments_exit_2(tmp_path, capsys, args, message):
    assert main(["render", *TOY, *args]) == 2
    assert message in capsys.readouterr().err


def test_unknown_generator_exit_2(tmp_path, capsys):
    assert main(["render", "--ckpt", "nosie", "--out", str(tmp_path / "x.png")]) == 2
    assert "nosie" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["noise", "oracle"])
def test_builtin_generators(tmp_path, name):
    out = tmp_path / f"{name}.png"
    assert main(["render", "--ckpt", name, "--out", str(out), "--ids", "2", "--views", "3", "--expressions", "3"]) == 0
    with Image.open(out) as im:
        arr = np.asarray(im.convert("RGB"))
    assert arr.std() > 5  # not a blank canvas


def test_comparison_figure_shows_every_model_with_the_same_latents_and_controls():
    """Identity #1 of each model's grids, one row per model: a model and itself give identical rows, and the
    row of a model equals its own grid's first identity (upscaled)."""
    spec = grids.GridSpec(n_ids=2, n_expressions=3)
    a = grids.model_grids(ToyGenerator(), spec, "toy A")
    b = grids.model_grids(ToyGenerator(), spec, "toy B")
    r = ToyGenerator().resolution
    assert np.array_equal(a.views, b.views)  # grids depend on the spec alone: same latents and controls
    row = grids._identity_row(a.views, 2, 0, r, 5)
    assert np.array_equal(row, a.views[:r])
    fig = grids.comparison_figure([a, b], spec)
    assert fig.width > 5 * 96 and fig.height > 2 * 2 * 96
    arr = np.asarray(fig)
    assert arr.std() > 0
