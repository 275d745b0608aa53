#!/usr/bin/env bash
# Builds liblathe_cuda.so with CMake and copies it where the jar picks it up.
#   build-native.sh NATIVE_DIR BUILD_DIR OUTPUT_DIR SKIP
# Skips (exit 0, with a message) when SKIP is true or no nvcc is found; a compile error fails.
set -euo pipefail
native_dir="$1"; build_dir="$2"; output_dir="$3"; skip="${4:-false}"

if [ "$skip" = "true" ]; then
  echo "lathe.native.skip=true: skipping liblathe_cuda.so"
  exit 0
fi
nvcc_path="$(command -v nvcc || true)"
if [ -z "$nvcc_path" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
  nvcc_path=/usr/local/cuda/bin/nvcc
fi
if [ -z "$nvcc_path" ]; then
  echo "nvcc not found: skipping liblathe_cuda.so (the jar will hold no CUDA library; --backend cuda will say so)"
  exit 0
fi
if ! command -v cmake >/dev/null 2>&1; then
  echo "nvcc found at $nvcc_path but cmake is missing: install cmake >= 3.25 to build liblathe_cuda.so" >&2
  exit 1
fi
# NOTE: two jobs at most: CI and the developer machines have 2 cores shared with others.
jobs="${LATHE_NATIVE_JOBS:-2}"
start=$(date +%s)
mkdir -p "$build_dir"
log="$build_dir/build.log"
# The full compiler output goes to build.log; it is printed only when the build fails.
if ! { cmake -S "$native_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc_path" \
       && cmake --build "$build_dir" -j "$jobs"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "liblathe_cuda.so failed to build (log above, also in $log)" >&2
  exit 1
fi
mkdir -p "$output_dir"
cp "$build_dir/liblathe_cuda.so" "$output_dir/liblathe_cuda.so"
echo "liblathe_cuda.so built with $nvcc_path in $(( $(date +%s) - start )) s -> $output_dir"
