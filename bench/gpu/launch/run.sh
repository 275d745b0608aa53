#!/usr/bin/env bash
# Builds and runs launch_overhead.cu against a built liblathe_cuda.so (default: run.sh's build).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
lib_dir="${1:-/tmp/lathe-native-build}"
nvcc -O2 -std=c++17 -I "$root/native/include" "$root/bench/gpu/launch/launch_overhead.cu" \
  -L "$lib_dir" -llathe_cuda -Xlinker -rpath="$lib_dir" -o /tmp/launch_overhead
/tmp/launch_overhead
