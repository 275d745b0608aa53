#!/usr/bin/env bash
# The CPU engine's decode speed report: writes the ~200M-parameter synthetic Llama (dim 1024,
# 12 layers, 16 heads, 4 KV heads, FFN 2816, vocab 32000) in Q4_0, Q8_0 and F16 with Lathe's GGUF
# writer, then runs `lathe bench` at 2 threads on each: decode tokens/s beside the bound (the read
# bandwidth measured in the same run / the bytes a decode step reads).
#   bench/cpu/decode-200m.sh [OUT_DIR] [THREADS]
# Models go to OUT_DIR (default /tmp/lathe-200m); results print to stdout. Run on a quiet machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-/tmp/lathe-200m}"
threads="${2:-2}"
mkdir -p "$out"
for type in Q4_0 Q8_0 F16; do
  model="$out/m200-$type.gguf"
  [ -f "$model" ] || "$root/lathe" synthetic --shape m200 --type "$type" -o "$model"
done
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git -C "$root" rev-parse --short HEAD)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
for type in Q4_0 Q8_0 F16; do
  echo "== $type"
  "$root/lathe" bench -m "$out/m200-$type.gguf" --threads "$threads" --prompt-tokens 64 --gen-tokens 64 --repeat 5 2>/dev/null
done
