#!/usr/bin/env bash
# The one command on the GPU machine (after bench/gpu/prepare.sh here, carrying bench/gpu/carry):
#   bash bench/gpu/run.sh
# 1. builds liblathe_cuda.so with that machine's nvcc/cmake (and uses it: LATHE_CUDA_LIB);
# 2. runs every @Tag("gpu") parity test (GpuSuite), then the flash prefill ones again with its switch on;
# 3. runs the kernel benchmarks (KernelBenchmark), the launch-overhead probe (launch/run.sh) and the
#    tensor-core GEMM probe (gemm/run.sh);
# 4. runs `lathe generate` (stories260K, greedy, cpu vs cuda, f32 and f16/bf16 KV) and
#    `lathe bench --backend cuda` on the synthetic 200M model in Q4_0, Q8_0 and F16 (and Q4_0
#    with --kv-dtype f16; F16 with the flash prefill kernel off and on at 512 and 2000 prompt tokens);
# 5. writes bench/results/gpu-<date>/ (summary.md, kernels.md, logs) and copies it to $OUT when set.
# Exit status: non-zero if a step failed (each step still runs).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
carry="$root/bench/gpu/carry"
java="$carry/jre/bin/java"
flags=(--add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC)
stamp="$(date -u +%Y%m%d-%H%M%S)"
results="$root/bench/results/gpu-$stamp"
mkdir -p "$results"
failures=()

[ -x "$java" ] || { echo "run.sh: $java missing: run bench/gpu/prepare.sh first and carry bench/gpu/carry" >&2; exit 1; }

step() { # step NAME COMMAND...: runs it, logs to $results/NAME.log, records failure
  local name="$1"; shift
  echo "== $name"
  local start=$(date +%s)
  "$@" 2>&1 | tee "$results/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc in $(( $(date +%s) - start )) s" | tee -a "$results/steps.txt"
  [ "$rc" -eq 0 ] || failures+=("$name")
  publish
}

publish() { # what is under $OUT comes back even when the device tool stops the command at its limit
  [ -n "${OUT:-}" ] || return 0
  mkdir -p "$OUT/results" && tar -czf "$OUT/results/logs.tar.gz" -C "$results" . 2>/dev/null
}

{
  echo "# GPU run $stamp"
  echo
  echo "commit: $(cat "$carry/COMMIT" 2>/dev/null | tr '\n' ' ')"
  echo "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi failed')"
  echo "nvcc: $(nvcc --version 2>/dev/null | tail -n1)"
  echo
} > "$results/summary.md"

build_native() {
  # Only this machine's architecture: the build for every target is CI's job, and time here is short.
  local arch
  arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d '.')"
  [ "$arch" = 90 ] && arch=90a
  cmake -S "$root/native" -B /tmp/lathe-native-build -DCMAKE_BUILD_TYPE=Release \
    ${arch:+-DCMAKE_CUDA_ARCHITECTURES=${arch}-real} >/dev/null \
    && cmake --build /tmp/lathe-native-build -j "$(nproc)"
}
step native-build build_native
if [ -f /tmp/lathe-native-build/liblathe_cuda.so ]; then
  export LATHE_CUDA_LIB=/tmp/lathe-native-build/liblathe_cuda.so
else
  echo "native build failed: the carried lathe.jar holds no library (prepare.sh leaves it out), so the CUDA steps will fail" | tee -a "$results/steps.txt"
fi

# The cuBLAS FP16 baseline (dlopen'd by the library): the toolkit's, or the one PyTorch's wheels bring.
if [ -z "${LATHE_CUBLAS_LIB:-}" ]; then
  LATHE_CUBLAS_LIB="$(find /usr/local /usr/lib /opt /root "$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null || echo /nonexistent)" \
    -name 'libcublas.so.13*' -not -name '*Lt*' 2>/dev/null | head -n1)"
  [ -n "$LATHE_CUBLAS_LIB" ] && export LATHE_CUBLAS_LIB
fi
echo "cuBLAS baseline: ${LATHE_CUBLAS_LIB:-not found}" | tee -a "$results/steps.txt"

[ -f /tmp/lathe-native-build/liblathe_cuda.so ] && step launch-overhead bash "$root/bench/gpu/launch/run.sh"
# The tensor-core GEMM's paths from its header (narrow, staged, the staged kernel alone, the f16
# decode alone) beside cuBLAS FP16, at 8-256 tokens (it needs cuBLAS's headers, as the toolkit has).
step gemm-probe bash "$root/bench/gpu/gemm/run.sh"

cp_tests="$carry/lib/lathe-cuda-gpu-tests.jar:$carry/lib/*"
step gpu-tests "$java" "${flags[@]}" -cp "$cp_tests" dev.lathe.cuda.GpuSuite
# Decode graphs and the flash prefill kernel are on by default (CudaSwitch), so the backends the
# tests open by the switch ran with them above; the model-level classes again with both off keep
# the plain paths (eager steps, paged prefill attention) checked as well.
step gpu-tests-plain-paths env LATHE_CUDA_GRAPHS=off LATHE_CUDA_FLASH_PREFILL=off "$java" "${flags[@]}" -cp "$cp_tests" \
  dev.lathe.cuda.GpuSuite '.*(FlashPrefill|ModelParity).*'
step kernel-bench "$java" "${flags[@]}" -cp "$carry/lib/lathe.jar" dev.lathe.cuda.KernelBenchmark "$results/kernels.md"

lathe() { "$java" "${flags[@]}" -jar "$carry/lib/lathe.jar" "$@"; }
if [ -f "$carry/models/stories260K-q8_0.gguf" ]; then
  generate_both() {
    local m="$carry/models/stories260K-q8_0.gguf" z="$carry/models/tok512.bin"
    local cpu_ids cuda_ids
    cpu_ids="$(lathe generate -m "$m" -z "$z" --backend cpu --temperature 0 -n 48 -p "Once upon a time" --print-ids)" || return 1
    cuda_ids="$(lathe generate -m "$m" -z "$z" --backend cuda --temperature 0 -n 48 -p "Once upon a time" --print-ids)" || return 1
    echo "cpu : $cpu_ids"; echo "cuda: $cuda_ids"
    [ "$cpu_ids" = "$cuda_ids" ] && echo "greedy tokens agree" || { echo "greedy tokens differ"; return 1; }
  }
  step generate-stories260K generate_both
  # f16/bf16 KV caches (--kv-dtype): both backends store the same rounded K/V, so greedy tokens
  # should agree as with f32 (a K/V value whose f32 error straddles a rounding boundary could in
  # principle differ by one 16-bit ulp; the log shows where the tokens part if they do).
  generate_both_kv() {
    local m="$carry/models/stories260K-q8_0.gguf" z="$carry/models/tok512.bin" kv cpu_ids cuda_ids status=0
    for kv in f16 bf16; do
      cpu_ids="$(lathe generate -m "$m" -z "$z" --backend cpu --kv-dtype "$kv" --temperature 0 -n 48 -p "Once upon a time" --print-ids)" || return 1
      cuda_ids="$(lathe generate -m "$m" -z "$z" --backend cuda --kv-dtype "$kv" --temperature 0 -n 48 -p "Once upon a time" --print-ids)" || return 1
      echo "--kv-dtype $kv cpu : $cpu_ids"; echo "--kv-dtype $kv cuda: $cuda_ids"
      [ "$cpu_ids" = "$cuda_ids" ] && echo "--kv-dtype $kv: greedy tokens agree" || { echo "--kv-dtype $kv: greedy tokens differ"; status=1; }
    done
    return $status
  }
  step generate-stories260K-kv-half generate_both_kv
  # Speculative decoding on the CUDA backend: greedy output must equal plain greedy decoding.
  speculate_cuda() {
    local m="$carry/models/stories260K-q8_0.gguf" z="$carry/models/tok512.bin" plain spec how
    plain="$(lathe generate -m "$m" -z "$z" --backend cuda --temperature 0 -n 64 -p "Once upon a time" --print-ids)" || return 1
    for how in ngram self:3; do
      spec="$(lathe generate -m "$m" -z "$z" --backend cuda --temperature 0 -n 64 -p "Once upon a time" --print-ids \
        --speculate "$how" --draft-tokens 4)" || return 1
      [ "$plain" = "$spec" ] && echo "--speculate $how: same tokens as plain greedy" \
        || { echo "--speculate $how: tokens differ"; echo "plain: $plain"; echo "spec : $spec"; return 1; }
    done
  }
  step speculate-cuda-stories260K speculate_cuda
  # Decode steps replayed as CUDA graphs (LATHE_CUDA_GRAPHS=on) must give the same greedy tokens.
  graphs_cuda() {
    local m="$carry/models/stories260K-q8_0.gguf" z="$carry/models/tok512.bin" off on
    off="$(env LATHE_CUDA_GRAPHS=off "$java" "${flags[@]}" -jar "$carry/lib/lathe.jar" generate -m "$m" -z "$z" \
      --backend cuda --temperature 0 -n 300 -p "Once upon a time" --print-ids)" || return 1
    on="$(env LATHE_CUDA_GRAPHS=on "$java" "${flags[@]}" -jar "$carry/lib/lathe.jar" generate -m "$m" -z "$z" \
      --backend cuda --temperature 0 -n 300 -p "Once upon a time" --print-ids)" || return 1
    echo "graphs off: $off"; echo "graphs on : $on"
    [ "$off" = "$on" ] && echo "greedy tokens agree with and without decode graphs" || { echo "greedy tokens differ with decode graphs"; return 1; }
  }
  step graphs-cuda-stories260K graphs_cuda
  # Where speculation should pay: on the GPU a 5-token verify pass costs about one token's launches.
  step bench-speculate-cuda-ngram lathe bench -m "$carry/models/stories260K-q8_0.gguf" -z "$carry/models/tok512.bin" \
    --backend cuda --speculate ngram --draft-tokens 4 --prompt-file "$root/bench/prompts/copy-story.txt" \
    --gen-tokens 64 --repeat 5
fi

for type in Q4_0 Q8_0 F16; do
  model="/tmp/lathe-synthetic-200M-$type.gguf"
  step "write-model-$type" "$java" "${flags[@]}" -cp "$cp_tests" dev.lathe.cuda.WriteSyntheticModel "$model" "$type"
  step "lathe-bench-cuda-$type" env LATHE_CUDA_GRAPHS=off "$java" "${flags[@]}" -jar "$carry/lib/lathe.jar" \
    bench -m "$model" --backend cuda --prompt-tokens 128 --gen-tokens 64 --repeat 3 --no-bandwidth
  # The same decode with each step replayed as one CUDA graph (DecodeGraphs): the launch-bound row.
  step "lathe-bench-cuda-graphs-$type" env LATHE_CUDA_GRAPHS=on "$java" "${flags[@]}" -jar "$carry/lib/lathe.jar" \
    bench -m "$model" --backend cuda --prompt-tokens 128 --gen-tokens 64 --repeat 3 --no-bandwidth
done
# f16 K/V pools (half the cache bytes of f32) on the same Q4_0 model, eager and with decode graphs.
step lathe-bench-cuda-kv-f16-Q4_0 env LATHE_CUDA_GRAPHS=off "$java" "${flags[@]}" -jar "$carry/lib/lathe.jar" \
  bench -m /tmp/lathe-synthetic-200M-Q4_0.gguf --backend cuda --kv-dtype f16 \
  --prompt-tokens 128 --gen-tokens 64 --repeat 3 --no-bandwidth
step lathe-bench-cuda-graphs-kv-f16-Q4_0 env LATHE_CUDA_GRAPHS=on "$java" "${flags[@]}" -jar "$carry/lib/lathe.jar" \
  bench -m /tmp/lathe-synthetic-200M-Q4_0.gguf --backend cuda --kv-dtype f16 --prompt-tokens 128 --gen-tokens 64 \
  --repeat 3 --no-bandwidth
# Prefill with the flash kernel off and on (LATHE_CUDA_FLASH_PREFILL), long prompts on the F16
# model (head_dim 64, 4 query heads per KV head): chunks of 256 tokens over a growing cached prefix.
# 2000 rather than 2048 prompt tokens: the model's context is 2048 and the bench decodes 16 more.
for prompt in 512 2000; do
  for flash in off on; do
    step "lathe-bench-cuda-flash-$flash-F16-P$prompt" env LATHE_CUDA_FLASH_PREFILL=$flash "$java" "${flags[@]}" \
      -jar "$carry/lib/lathe.jar" bench -m /tmp/lathe-synthetic-200M-F16.gguf --backend cuda --prompt-tokens "$prompt" \
      --gen-tokens 16 --repeat 3 --no-bandwidth
  done
done
step lathe-bench-cpu-Q4_0 lathe bench -m /tmp/lathe-synthetic-200M-Q4_0.gguf --backend cpu --prompt-tokens 32 --gen-tokens 16 --repeat 1

{
  echo "## Steps"; echo; sed 's/^/    /' "$results/steps.txt"; echo
  echo "## GPU parity suite"; echo; tail -n 25 "$results/gpu-tests.log" 2>/dev/null | sed 's/^/    /'; echo
  echo "## Tensor-core GEMM probe (bench/gpu/gemm)"; echo
  grep -v '^WARNING' "$results/gemm-probe.log" 2>/dev/null | sed 's/^/    /'; echo
  echo "## Launch overhead (one 1x4096 RMSNorm, back to back)"; echo
  grep '^round' "$results/launch-overhead.log" 2>/dev/null | sed 's/^/    /'; echo
  echo "## lathe bench"; echo
  for f in "$results"/lathe-bench-*.log "$results"/bench-speculate-*.log; do echo "### $(basename "$f" .log)"; echo; grep -v '^WARNING' "$f" | sed 's/^/    /'; echo; done
  [ -f "$results/kernels.md" ] && sed -n '/^| kernel/,$p' "$results/kernels.md"
} >> "$results/summary.md"

if [ -n "${OUT:-}" ]; then
  # The device tool returns at most 8 files: the tables, the suite's log, and the rest as one archive.
  mkdir -p "$OUT/results" && cp "$results"/*.md "$results/steps.txt" "$results/gpu-tests.log" "$OUT/results/" 2>/dev/null
  tar -czf "$OUT/results/logs.tar.gz" -C "$results" . 2>/dev/null
fi
echo "results: $results"
if [ ${#failures[@]} -gt 0 ]; then
  echo "FAILED steps: ${failures[*]}"
  exit 1
fi
echo "all steps passed"
