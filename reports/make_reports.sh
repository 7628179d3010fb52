#!/usr/bin/env bash
# Regenerate reports/ for the embedded default: the quick protocol on the synthetic profile, built-in
# generators. Usage: reports/make_reports.sh [--keep-runs]   (PYTHON=/path/to/python to choose the interpreter)
# Documented in docs/tables-and-reports.md ("Regenerating reports/").
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ob() { "$PY" -m omnibench "$@"; }
OUT=reports
# Metrics that run offline on the synthetic profile: identity via the synthetic backbone shipped in
# metrics/backbones/weights and via dlib (weights in a wheel); AED/ASD/APD via the shipped regressor.
# Override with OMNIBENCH_REPORT_METRICS=comma,list (names or name@variant, as 'omnibench evaluate --metrics').
METRICS="${OMNIBENCH_REPORT_METRICS:-fid,kid,id-views@synthetic,id-expr@synthetic,id-views@dlib,id-expr@dlib,aed,asd,apd,mv-reproj,geometry}"
RUNS=()
mkdir -p "$OUT/runs" "$OUT/figures"

# --keep-runs: re-render tables, figures and report from the existing reports/runs/*.json (no evaluation)
# 'quick' is protocol v2 since 2026-12-06; the v1 results stay in reports/runs/v1/ (not regenerated here).
# tiny / tiny-no-prior: the shipped OmniAvatar Stage II checkpoints (reference_model/checkpoints; --ckpt NAME)
for gen in oracle oracle-noexpr oracle-noshape noise tiny tiny-no-prior; do
  if [ "${1:-}" != "--keep-runs" ]; then
    ob evaluate --ckpt "$gen" --protocol quick --metrics "$METRICS" --out "$OUT/runs/$gen.json" --no-progress > /dev/null
  fi
  RUNS+=("$OUT/runs/$gen.json")
done

for fmt in md tex csv; do
  ob table "${RUNS[@]}" --baselines published --out "$OUT/table.$fmt"
done

ob render --ckpt oracle --out "$OUT/figures/oracle.png" --gif
ob render --ckpt noise --out "$OUT/figures/noise.png"
ob render --ckpt tiny --out "$OUT/figures/tiny.png" --gif
ob render --ckpt tiny-no-prior --out "$OUT/figures/tiny-no-prior.png"

ob report "${RUNS[@]}" --baselines published --out "$OUT/report.html" --title "omnibench report: quick protocol, built-in generators and the shipped OmniAvatar tiny checkpoints"

# Example of the regression gate's summary: the oracle without expression control vs the oracle.
# Exit 1 (a regression) is the expected outcome here; exit 2 (bad input) is not.
set +e
ob compare --baseline "$OUT/runs/oracle.json" --current "$OUT/runs/oracle-noexpr.json" --out "$OUT/compare-example.md" > /dev/null
rc=$?
set -e
if [ "$rc" -eq 2 ]; then echo "compare failed on bad input" >&2; exit 2; fi

if command -v chromium >/dev/null 2>&1; then
  "$PY" -m omnibench.report.browser "$OUT/report.html" --screenshot "$OUT/report.png" --height 2400 > /dev/null
else
  echo "chromium not installed: skipped the browser check and reports/report.png" >&2
fi
echo "reports/ regenerated" >&2
