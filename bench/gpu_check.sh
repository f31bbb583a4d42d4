#!/usr/bin/env bash
# One prepared check on a CUDA machine (the device tool): the runner's smoke profile end to end on
# the GPU, then the training-step benchmark in fp32 and bf16, eager and compiled: the paper's size
# (64 px, batch 64) and the host-bound case (16 px, batch 1) that the CPU uses as its proxy.
# Needs keras/optree/namex/crc32c wheels in .whl/ where the machine lacks them (see README).
set -uo pipefail
export PYTHONUNBUFFERED=1 KERAS_BACKEND=torch
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 - <<'PY' | tee -a "$OUT/gpu.txt"
import torch, torch.nn.functional as F  # monetk skips the norm's CPU-only centring on CUDA
x = (torch.randn(64, 32, 64, 64, device="cuda") * 3 + 20).contiguous(memory_format=torch.channels_last)
g, b = torch.rand(32, device="cuda"), torch.randn(32, device="cuda")
ref = F.group_norm(x.double().contiguous(), 32, g.double(), b.double(), 1e-5)
print("CUDA channels_last group_norm, max error vs float64:",
      (F.group_norm(x, 32, g, b, 1e-5).double() - ref).abs().max().item())
PY
python3 runner.py specs/section3_2.yaml --profile smoke --out /tmp/runs 2>&1 | tail -5 | tee "$OUT/smoke.log"
python3 - <<'PY' | tee -a "$OUT/smoke.log"
import json, glob
for path in sorted(glob.glob("/tmp/runs/store/*/result.json")):
    r = json.load(open(path))
    print(r["status"], r["device"], r["steps"], r["final"]["fg_ari"])
PY
timeout 420 python3 -m bench --sections train --cases host-b1,default-b64 --no-peer \
  --out "$OUT/bench_b64.json" 2>&1 | tee "$OUT/bench_b64.log"
timeout 120 python3 -m bench --sections train,eval --cases default-b4 --no-peer --no-compile \
  --out "$OUT/bench_b4.json" 2>&1 | tee "$OUT/bench_b4.log"
