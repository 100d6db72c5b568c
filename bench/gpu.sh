#!/usr/bin/env bash
# The benchmark on a CUDA GPU (installs nothing):
#   1. the tiny default MAE, every part of bench/run.py (pass --quick for the short version);
#   2. a ViT-B/16 MAE (vit_base_patch16 preset) with seeded random weights at 224x224, a 3x3 plane over 128
#      images: ours, the reference loop and the bare forward, plus the 51x51 / 2,048-image estimate.
# Needs the project venv with the peers already in (.venv/bin/pip install -r bench/requirements.txt).
# Results: bench/results/cuda-full.json (or cuda-quick.json) and bench/results/cuda-vit_b.json.
#   bench/gpu.sh [--quick] [--repeats N]        PYTHON=/path/to/python bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA GPU visible to torch")'
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== tiny MAE (default model) =="
"$PY" bench/run.py --device cuda "$@"

echo "== ViT-B/16 MAE, random weights, 224x224, 3x3 points, 128 images =="
"$PY" bench/run.py --device cuda --model vit_b
