#!/usr/bin/env bash
# reports/comparison.{md,tex,csv,html}: OmniAvatar, OmniAvatar without L_prior and the AniFaceGAN-style and EG3D-style
# baselines trained under one budget, every training seed (reports/comparison-models.tsv), beside the oracle reference
# (the built-in generator 'oracle', first row of the TSV) and the published baselines (never ranked with them).
# Usage: reports/make_comparison.sh [--keep-runs]   (PYTHON=/path/to/python to choose the interpreter)
# A model whose checkpoint is not on this machine (the seeds that do not ship) keeps its committed result file; a
# checkpoint whose sha256 differs from the one recorded is refused. Documented in docs/tables-and-reports.md
# ("The comparison report").
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ob() { "$PY" -m omnibench "$@"; }
# every metric the synthetic profile computes offline: make_reports.sh's list plus the estimator-free akd (dlib's 68 points)
METRICS="${OMNIBENCH_REPORT_METRICS:-fid,kid,id-views@synthetic,id-expr@synthetic,id-views@dlib,id-expr@dlib,aed,asd,apd,akd,akd@mouth,mv-reproj,geometry}"
OUT=reports/runs/comparison
mkdir -p "$OUT"
RUNS=()
while IFS=$'\t' read -r stem label ckpt sha; do
  case "$stem" in ''|'#'*) continue ;; esac
  result="$OUT/$stem.json"
  if [ "${1:-}" != "--keep-runs" ]; then
    if [ -f "$ckpt" ] || [[ "$ckpt" != */* ]]; then  # a file here, or a built-in generator's name
      if [ "$sha" != "-" ] && [ "$(sha256sum "$ckpt" | cut -d' ' -f1)" != "$sha" ]; then
        echo "make_comparison: $ckpt is not the checkpoint recorded for $stem (sha256 $sha); rebuild it or update reports/comparison-models.tsv" >&2
        exit 2
      fi
      ob evaluate --ckpt "$ckpt" --protocol quick --metrics "$METRICS" --label "$label" --out "$result" --no-progress > /dev/null
    elif [ -f "$result" ]; then
      echo "make_comparison: $ckpt not here; keeping the committed $result" >&2
    else
      echo "make_comparison: neither $ckpt nor $result exists" >&2
      exit 2
    fi
  fi
  RUNS+=("$result")
done < reports/comparison-models.tsv
for fmt in md tex csv; do
  ob table "${RUNS[@]}" --baselines published --out "reports/comparison.$fmt"
done
ob report "${RUNS[@]}" --baselines published --out reports/comparison.html \
  --title "omnibench comparison: OmniAvatar and baselines trained under one budget (quick protocol, synthetic profile)"
echo "reports/comparison.* regenerated" >&2
