"""``omnibench control-response`` (omnibench.control_response): known answers from generators that ignore a
control, and the generic ``Generator.read_expression`` hook. The command line: tests/omnibench/cli/test_control_response.py."""

import pytest
import torch

from omnibench.cameras import orbit_camera
from omnibench.control_response import column_correlation, control_response, neutral
from omnibench.generators.base import Controls
from omnibench.generators.oracle import OracleGenerator, OracleNoExprGenerator, OracleNoShapeGenerator


def _controls(n: int) -> Controls:
    g = torch.Generator().manual_seed(0)
    return Controls(camera=orbit_camera(0.3 * torch.randn(n, generator=g), 0.1 * torch.randn(n, generator=g)),
                    shape=0.8 * torch.randn(n, 10, generator=g), expression=0.8 * torch.randn(n, 10, generator=g),
                    pose=torch.cat([torch.zeros(n, 6), 0.2 * torch.rand(n, 1, generator=g), torch.zeros(n, 8)], 1))


class _ReadsColours(OracleGenerator):
    """The oracle with a read-out: 'expression' = mean colour per channel (3 columns)."""

    def read_expression(self, images: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
        assert images.shape[0] == camera.shape[0] and camera.shape[1] == 25
        return images.mean(dim=(2, 3))


def test_neutral_zeroes_one_group_only():
    c = _controls(3)
    n = neutral(c, "jaw")
    assert torch.all(n.pose[:, 6:9] == 0) and torch.equal(n.pose[:, :6], c.pose[:, :6]) and torch.equal(n.expression, c.expression)
    assert torch.all(neutral(c, "expression").expression == 0) and torch.all(neutral(c, "shape").shape == 0)
    with pytest.raises(ValueError):
        neutral(c, "gaze")


def test_column_correlation_known_answers():
    x = torch.randn(50, 1)
    est = torch.cat([2 * x + 1, -x, torch.zeros_like(x)], 1)
    assert column_correlation(est, x.expand(-1, 3)) == pytest.approx([1.0, -1.0, 0.0], abs=1e-5)


def test_oracles_that_ignore_a_control_score_zero_for_it():
    z, c = torch.randn(4, OracleGenerator.load(None).z_dim), _controls(4)
    full = control_response(OracleGenerator.load(None), z, c, batch=2)["groups"]
    noexpr = control_response(OracleNoExprGenerator.load(None), z, c, batch=2, reference=OracleGenerator.load(None))
    noshape = control_response(OracleNoShapeGenerator.load(None), z, c, batch=2)["groups"]
    assert noexpr["groups"]["expression"] == {"mean_abs": 0.0, "p99_abs": 0.0}
    assert noshape["shape"] == {"mean_abs": 0.0, "p99_abs": 0.0}
    for g in ("expression", "shape", "jaw"):
        assert full[g]["p99_abs"] > 0.01 and full[g]["p99_abs"] >= full[g]["mean_abs"]
    assert noexpr["reference_groups"] == full  # the reference is measured on the same z and controls
    assert noexpr["groups"]["shape"]["mean_abs"] > 0 and noshape["expression"]["mean_abs"] > 0
    assert "encoder" not in noexpr  # the oracles have no read-out (Generator.read_expression returns None)


def test_read_expression_hook_gives_the_encoder_block():
    z, c = torch.randn(4, OracleGenerator.load(None).z_dim), _controls(4)
    res = control_response(_ReadsColours(), z, c, batch=2, groups=("jaw",), reference=OracleNoExprGenerator.load(None))
    enc = res["encoder"]
    assert enc["columns"] == 3 and set(enc["correlation"]) == {"generated", "reference"}
    assert all(len(v) == 3 and all(-1 <= x <= 1 for x in v) for v in enc["correlation"].values())
    alone = control_response(_ReadsColours(), z, c, batch=4, groups=("jaw",))["encoder"]
    assert alone == {"columns": 3, "correlation": {"generated": enc["correlation"]["generated"]}}
