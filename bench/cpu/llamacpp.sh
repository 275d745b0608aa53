#!/usr/bin/env bash
# Lathe beside llama.cpp on this machine: the same GGUF files, the same thread count, run in
# alternation so that both see the same load. llama.cpp is built from source here, for this CPU
# (GGML_NATIVE). The source is the git bundle inside the npm package node-llama-cpp (npm is reachable
# where GitHub is not): the pinned tarball is fetched with `npm pack`, checked against its sha512, and
# only the bundle is used (no dependencies, no prebuilt binaries).
#
#   bench/cpu/llamacpp.sh [ROUNDS] MODEL.gguf...
#     decode: `lathe bench` (16 prompt tokens, 64 generated, 5 repeats, median) against
#     `llama-bench -p 0 -n 64 -d 16 -r 5` (64 tokens generated after 16 in the cache, median of the 5)
#   BATCH=1,8,32 bench/cpu/llamacpp.sh [ROUNDS] MODEL.gguf...
#     batched decode: `lathe bench --batch` against `llama-batched-bench` (16 prompt tokens and 32
#     generated per sequence), decode tokens/s per batch size
#   THREADS (default 2). Needs npm, node, cmake and a C++ compiler; the first run builds llama.cpp
#   (about 10 minutes on 2 cores) into bench/cpu/llamacpp/build/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/bench/cpu/llamacpp"
threads="${THREADS:-2}"
rounds=3
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then rounds="$1"; shift; fi
[ $# -ge 1 ] || { echo "usage: bench/cpu/llamacpp.sh [ROUNDS] MODEL.gguf..." >&2; exit 2; }

bin="$here/build/cmake/bin"
spec=node-llama-cpp@3.22.1
package=node-llama-cpp-3.22.1.tgz # what npm pack writes for $spec
integrity='sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=='
if [ ! -x "$bin/llama-bench" ] || [ ! -x "$bin/llama-batched-bench" ]; then
  mkdir -p "$here/build"
  [ -f "$here/build/$package" ] || (cd "$here/build" && npm pack "$spec" --silent >/dev/null)
  got="sha512-$(openssl dgst -sha512 -binary "$here/build/$package" | base64 -w0)"
  [ "$got" = "$integrity" ] || { echo "$package: sha512 $got, expected $integrity" >&2; exit 1; }
  rm -rf "$here/build/src" "$here/build/package"
  tar -xzf "$here/build/$package" -C "$here/build" package/llama/gitRelease.bundle
  git clone -q "$here/build/package/llama/gitRelease.bundle" "$here/build/src"
  cmake -S "$here/build/src" -B "$here/build/cmake" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >&2
  cmake --build "$here/build/cmake" -j "$(nproc)" --target llama-bench llama-batched-bench >&2
fi
# builds Lathe on first use, outside the timed runs
"$root/lathe" --version >/dev/null 2>&1 || { echo "lathe does not start: run ./lathe --version to see why" >&2; exit 1; }

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# fields NAME... of each JSON line on stdin, space-separated (an array field: one value per line)
json_fields() { node -e '
  const names = process.argv.slice(1);
  for (const line of require("fs").readFileSync(0, "utf8").split("\n")) {
    if (!line.startsWith("{")) continue;
    const j = JSON.parse(line);
    console.log(names.map((n) => Array.isArray(j[n]) ? j[n].join("\n") : j[n]).join(" "));
  }' "$@"; }

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  lathe: $(git -C "$root" rev-parse --short HEAD)  llama.cpp: $(git -C "$here/build/src" rev-parse --short HEAD) (from $package)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, threads $threads, load $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -z "${BATCH:-}" ]; then
  for r in $(seq "$rounds"); do
    for model in "$@"; do
      out="$("$root/lathe" bench -m "$model" --threads "$threads" --prompt-tokens 16 --gen-tokens 64 --repeat 5 2>/dev/null)"
      lathe=$(echo "$out" | awk '/^decode +64 tokens:/ { print $4 }')
      bound=$(echo "$out" | awk '/^bound/ { print $2 }')
      llama=$("$bin/llama-bench" -m "$model" -t "$threads" -p 0 -n 64 -d 16 -r 5 -o jsonl 2>/dev/null | json_fields samples_ts | median)
      echo "$(basename "$model") $r $lathe $llama $bound" >> "$log"
      printf '%s round %s: lathe %s tok/s, llama.cpp %s tok/s, bound %s tok/s (lathe bench: same-run bandwidth / bytes per token)\n' \
        "$(basename "$model")" "$r" "$lathe" "$llama" "$bound"
    done
  done
  echo
  echo "| model | Lathe decode tok/s | llama.cpp decode tok/s | Lathe / llama.cpp | bound tok/s | Lathe % of bound | llama.cpp % of bound |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for model in "$@"; do
    name="$(basename "$model")"
    rows="$(awk -v m="$name" '$1 == m' "$log")"
    l=$(echo "$rows" | awk '{ print $3 }' | median)
    c=$(echo "$rows" | awk '{ print $4 }' | median)
    b=$(echo "$rows" | awk '{ print $5 }' | median)
    ratios="$(echo "$rows" | awk '{ printf "%.2f\n", $3 / $4 }')"
    lp="$(echo "$rows" | awk '{ printf "%.0f\n", 100 * $3 / $5 }' | sort -n | paste -sd- | sed 's/-.*-/-/')"
    cp="$(echo "$rows" | awk '{ printf "%.0f\n", 100 * $4 / $5 }' | sort -n | paste -sd- | sed 's/-.*-/-/')"
    printf '| %s | %s | %s | %.2fx (%s) | %s | %s%% | %s%% |\n' "$name" "$l" "$c" "$(echo "$ratios" | median)" \
      "$(echo "$ratios" | sort -g | paste -sd' ')" "$b" "$lp" "$cp"
  done
  echo "(cells: medians over $rounds rounds; ratio: median of the per-round ratios, then each round's; % of bound: the rounds' range)"
else
  max_batch=$(echo "$BATCH" | tr ',' '\n' | sort -n | tail -1)
  for r in $(seq "$rounds"); do
    for model in "$@"; do
      name="$(basename "$model")"
      "$root/lathe" bench -m "$model" --threads "$threads" --batch "$BATCH" --prompt-tokens 16 --gen-tokens 32 --repeat 3 2>/dev/null |
        awk -v m="$name" -v r="$r" '$1 ~ /^[0-9]+$/ && NF >= 6 { print m, r, "lathe", $1, $7 }' >> "$log"
      "$bin/llama-batched-bench" -m "$model" -t "$threads" -c $(( max_batch * 48 > 2048 ? max_batch * 48 : 2048 )) -b 512 -ub 512 \
          -npp 16 -ntg 32 -npl "$BATCH" --output-format jsonl 2>/dev/null |
        json_fields pl speed_tg | awk -v m="$name" -v r="$r" '{ printf "%s %s llama.cpp %s %.2f\n", m, r, $1, $2 }' >> "$log"
      awk -v m="$name" -v r="$r" '$1 == m && $2 == r { printf "%s round %s: %s batch %s: %s tok/s\n", $1, $2, $3, $4, $5 }' "$log"
    done
  done
  echo
  echo "| model | engine | $(echo "$BATCH" | sed 's/,/ | /g; s/[0-9][0-9]*/batch &/g') | batch $max_batch / batch 1 |"
  echo "|---|---|$(echo "$BATCH" | sed 's/[0-9][0-9]*/---:/g; s/,/|/g')|---:|"
  for model in "$@"; do
    name="$(basename "$model")"
    for engine in lathe llama.cpp; do
      cells=""
      for b in $(echo "$BATCH" | tr ',' ' '); do
        cells="$cells | $(awk -v m="$name" -v e="$engine" -v b="$b" '$1 == m && $3 == e && $4 == b { print $5 }' "$log" | median)"
      done
      ratio=$(awk -v m="$name" -v e="$engine" -v top="$max_batch" '$1 == m && $3 == e && $4 == 1 { one[$2] = $5 }
          $1 == m && $3 == e && $4 == top { many[$2] = $5 } END { for (r in one) if (r in many) printf "%.2f\n", many[r] / one[r] }' "$log")
      printf '| %s | %s%s | %.2fx (%s) |\n' "$name" "$engine" "$cells" "$(echo "$ratio" | median)" "$(echo "$ratio" | sort -g | paste -sd' ')"
    done
  done
  echo "(decode tokens/s, medians over $rounds rounds; ratio: median of the per-round ratios, then each round's)"
fi
