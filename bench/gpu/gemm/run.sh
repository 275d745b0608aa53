#!/usr/bin/env bash
# Builds and runs gemm_probe.cu (the tensor-core GEMM from its header, beside cuBLAS FP16) on the
# GPU machine. Extra arguments go to nvcc (e.g. -DLATHE_MMA_STAGES=4 to try a deeper ring).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d '.')"
[ "$arch" = 90 ] && arch=90a
rm -f /tmp/gemm_probe
nvcc -O3 -std=c++17 -arch="sm_$arch" "$@" "$root/bench/gpu/gemm/gemm_probe.cu" -lcublas -o /tmp/gemm_probe 2>&1 \
  | grep -v 'ordered_metadata' || true
[ -x /tmp/gemm_probe ] || { echo "gemm_probe did not build" >&2; exit 1; }
/tmp/gemm_probe
