#!/usr/bin/env bash
# One prepared check for a lent GPU, about 10 minutes in all (never a test dependency):
#   1. Stage II training and generation throughput of the ffhq512 config at 512 x 512 (issue #7/#20 goal:
#      >= 30 training images/s on one H100);
#   2. the Inception feature pass, omnibench fast vs torch-fidelity on the GPU, ratio and images/s (issue #19);
#   3. a short ffhq512 training run on a small synthetic 512 px dataset rendered here, to show the losses move.
# Usage (repository root, a venv with the project installed):  bash benchmarks/gpu_check.sh [OUT_DIR]
set -uo pipefail
out="${1:-${OUT:-/tmp/gpu_check}}"
mkdir -p "$out"
export OMNIBENCH_CACHE="${OMNIBENCH_CACHE:-$out/cache}" CI=true
log() { echo "== $* ($(date +%T))" | tee -a "$out/summary.txt"; }
log "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/summary.txt"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/summary.txt"
log "1. ffhq512 training/generation throughput"
timeout 240 python benchmarks/gan_throughput.py --config ffhq512 --device cuda --steps 5 --no-compare 2>&1 \
  | tail -4 | tee -a "$out/summary.txt"
log "2. Inception feature pass on the GPU"
timeout 150 python benchmarks/fid_speed.py --device cuda --n 1000 --batch-size 64 --repeat 2 2>&1 \
  | tail -6 | tee -a "$out/summary.txt"
log "3. a short ffhq512 run (64 synthetic 512 px images, 60 steps)"
timeout 120 omnibench data synth --n 64 --res 512 --seed 5 --workers 8 --framing ffhq --out "$out/data512" \
  > "$out/synth.log" 2>&1
timeout 120 omnibench train gan-encoder --config ffhq512 --data "$out/data512" --steps 200 --batch 32 --device cuda \
  --out "$out/E.pt" > "$out/encoder.log" 2>&1  # a quick E for L_enc (the config trains 20 000 steps)
timeout 300 omnibench train gan --config ffhq512 --data "$out/data512" --encoder "$out/E.pt" --out "$out/run" --steps 60 \
  --log-every 10 --device cuda > "$out/train.log" 2>&1
python - "$out/run/log.jsonl" <<'PY' | tee -a "$out/summary.txt"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
for r in rows[:: max(1, len(rows) // 6)] + rows[-1:]:
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
PY
log "done"
