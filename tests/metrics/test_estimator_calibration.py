"""The 'estimators side by side' calibration section: rows per estimator and akd variant, the weights-only
estimators listed with their command, versioned markers."""

from __future__ import annotations

from metrics.calibration.estimators import (
    AKD_SPECS,
    BEGIN,
    ESTIMATOR_SPECS,
    calibrate,
    render_markdown,
    render_sets,
)


def test_rows_and_markdown(synthetic_heads, tmp_path):
    head, sets, controls = render_sets(2, 7, 96, "quick@2")
    assert set(sets) == {"oracle", "oracle-noexpr", "oracle-noshape", "noise"}
    rows = calibrate(head, sets, controls, "quick@2", ("regressor",), akd=True)
    assert list(rows) == ["regressor", "akd"]
    assert list(rows["regressor"]["specs"]) == list(ESTIMATOR_SPECS) and list(rows["akd"]["specs"]) == list(AKD_SPECS)
    noise = rows["akd"]["specs"]["akd@mouth"]["noise"]
    assert noise["failures"] == noise["n"] == 2
    assert "diff_vs_oracle_ci95" in rows["regressor"]["specs"]["aed@rmse"]["oracle-noexpr"]
    md = render_markdown(rows, 2, 7, 96, "quick@2", "python -m metrics.calibration.estimators --n 2")
    assert md.startswith(BEGIN.replace(":begin", "-v2:begin"))
    for name in ("deca", "emoca", "smirk"):
        assert f"| `{name}` | needs your weights |" in md and f"--estimators {name} --no-akd --weights {name}=" in md
    assert "| `akd` | `akd@mouth` | iod |" in md
