#!/usr/bin/env bash
# CI regression gate on the embedded default: re-evaluate the built-in oracle on the quick protocol and
# compare with the committed reports/runs/oracle.json. Exit 0 ok, 1 regression, 2 bad input.
# Usage: reports/ci_gate.sh [extra 'omnibench compare' args, e.g. --tolerances tol.yaml]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# exactly the metrics of the committed baseline (keys are 'name' or 'name@variant', as --metrics takes them)
METRICS="$("$PY" -c "import json; print(','.join(json.load(open('reports/runs/oracle.json'))['metrics']))")"
"$PY" -m omnibench evaluate --ckpt oracle --protocol quick --metrics "$METRICS" --out "$tmp/oracle.json" --no-progress > /dev/null
exec "$PY" -m omnibench compare --baseline reports/runs/oracle.json --current "$tmp/oracle.json" "$@"
