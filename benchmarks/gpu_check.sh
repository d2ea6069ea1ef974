#!/usr/bin/env bash
# The checks engine v2 could not run without a GPU, as one script for the device machine
# (an H100 whose python3 has torch, torchvision, timm, pluggy, click, tqdm, pytest, matplotlib):
#   python3 -m pip install -q --no-deps --no-build-isolation -e . -e plugins/cnnkit-lenet5 && bash benchmarks/gpu_check.sh
# About 5 minutes. Writes nothing outside /tmp.
set -uo pipefail
export PYTHONUNBUFFERED=1 CNNKIT_CACHE=/tmp/cnnkit-cache
out=/tmp/gpu-check
rm -rf "$out"; mkdir -p "$out"
step() { echo; echo "== $*"; }

step "loop overhead against a minimal loop (target <= 1.03)"
python3 benchmarks/loop_overhead.py --device cuda --batch-size 64 --epochs 8
python3 benchmarks/loop_overhead.py --device cuda --batch-size 512 --epochs 8

step "precision on the GPU (auto should pick bf16)"
python3 benchmarks/precision.py --device cuda --steps 10

step "train on CUDA: auto precision, printed and recorded"
python3 -m cnnkit train --epochs 3 --out "$out" --name cuda | head -2
python3 -c "import json; c = json.load(open('$out/cuda/config.json')); print({k: c[k] for k in ('device', 'precision', 'channels_last', 'deterministic', 'strategy')})"

step "resume on CUDA equals the uninterrupted run (--deterministic)"
python3 -m cnnkit train --epochs 4 --deterministic --quiet --out "$out" --name whole
timeout -s INT 6 python3 -m cnnkit train --epochs 4 --deterministic --out "$out" --name part
python3 -m cnnkit train --resume "$out/part" --quiet
cut -d, -f1-6 "$out/whole/metrics.csv" > "$out/a"; cut -d, -f1-6 "$out/part/metrics.csv" > "$out/b"
diff "$out/a" "$out/b" && echo "resumed metrics equal"

step "fp16 with a gradient scaler"
python3 -m cnnkit train --epochs 2 --precision fp16 --quiet --out "$out" --name fp16

step "dp with one GPU falls back to single; ddp with one process"
python3 -m cnnkit train --epochs 1 --strategy dp --quiet --out "$out" --name dp
python3 -m cnnkit train --epochs 1 --strategy ddp --nproc-per-node 1 --quiet --out "$out" --name ddp1

step "test suite (GPU machine)"
python3 -m pytest -q -x tests 2>&1 | tail -5
