#!/bin/bash
# burn vs PyTorch on this machine: installs PyTorch once into a virtualenv outside the
# repository (default ../torch-venv; ~6 GB with the CUDA wheels PyPI's torch pulls in), builds
# the burn side, and runs bench/compare.py. Not part of CI.
#   bench/run.sh [--rounds N] [--workloads pixelcnn,vae,row-lstm,sample,gemm] [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TORCH_VENV:-../torch-venv}
TORCH_VERSION=${TORCH_VERSION:-2.15.0}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --progress-bar off "torch==$TORCH_VERSION" numpy
fi
cargo build --release --example versus_pytorch
python3 bench/compare.py --burn target/release/examples/versus_pytorch --python "$VENV/bin/python" "$@"
