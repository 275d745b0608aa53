#!/usr/bin/env bash
# Prepares what the GPU machine needs and cannot get there (it has nvcc, cmake and Python, but no
# JDK, Maven or registry): bench/gpu/carry/ (git-ignored), under the device tool's 64 MiB limit.
#   jre/        a jlink'd runtime with only the modules Lathe needs
#   lib/        lathe.jar (the CLI, all modules, the .so built here) + the GPU tests and JUnit
#   models/     stories260K (q8_0 GGUF + tokenizer) when ../shared has it
#   COMMIT      the commit these were built from
# Then, on the GPU machine: bash bench/gpu/run.sh (carry bench/gpu/carry). See bench/gpu/README.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
carry="$root/bench/gpu/carry"
offline="${LATHE_OFFLINE:+-o}"

java_home="$("$root/lathe" mvn -v 2>/dev/null | sed -n 's/^.*runtime: \(.*\)$/\1/p' | head -n1)"
[ -x "$java_home/bin/jlink" ] || { echo "prepare.sh: no jlink under '$java_home' (need a JDK 25)" >&2; exit 1; }

echo "== building (skip tests)"
"$root/lathe" mvn $offline -q -DskipTests install
rm -rf "$carry"
mkdir -p "$carry/lib" "$carry/models"

echo "== jars"
cp "$root/java/cli/target/lathe.jar" "$carry/lib/"
# run.sh builds liblathe_cuda.so with the GPU machine's own toolkit, so the copy in the jar stays here.
zip -q -d "$carry/lib/lathe.jar" 'native/*'
(cd "$root/java/cuda/target/test-classes" && "$java_home/bin/jar" cf "$carry/lib/lathe-cuda-gpu-tests.jar" .)
"$root/lathe" mvn $offline -q -pl java/cuda dependency:build-classpath -Dmdep.includeScope=test \
  -Dmdep.outputFile="$carry/classpath.txt" >/dev/null
# The test classpath minus what lathe.jar already holds: JUnit, its helpers, core's test helpers.
tr ':' '\n' < "$carry/classpath.txt" | grep -E 'junit|opentest4j|apiguardian|lathe-core-.*-tests\.jar' \
  | while read -r jar; do cp "$jar" "$carry/lib/"; done
rm "$carry/classpath.txt"

echo "== jlink"
# NOTE: jdeps also lists java.sql and java.desktop, used only by optional Jackson features
# (java.sql.Date, java.beans) Lathe never touches; leaving them out saves ~15 MB of the budget.
"$java_home/bin/jlink" --add-modules java.base,java.logging,java.management,jdk.incubator.vector,jdk.unsupported,jdk.zipfs \
  --strip-debug --no-man-pages --no-header-files --compress=zip-9 --output "$carry/jre" 2>&1 | grep -v '^WARNING' || true
# jlink keeps libjvm.so's symbol tables (about 5 MB); the device tool's size limit wants them gone.
command -v strip >/dev/null && strip --strip-unneeded "$carry/jre/lib/server/libjvm.so"

if [ -d "$root/../shared/models/stories260K" ]; then
  cp "$root/../shared/models/stories260K/stories260K-q8_0.gguf" "$root/../shared/models/stories260K/tok512.bin" "$carry/models/"
fi
git -C "$root" rev-parse HEAD > "$carry/COMMIT" 2>/dev/null || echo unknown > "$carry/COMMIT"
[ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ] && echo "(with uncommitted changes)" >> "$carry/COMMIT"

size=$(du -sb "$carry" | cut -f1)
tree=$(git -C "$root" ls-files -z | xargs -0 cat 2>/dev/null | wc -c)
limit=$((64 * 1024 * 1024))
echo "== bench/gpu/carry: $((size / 1048576)) MiB + $((tree / 1048576)) MiB of tracked files (the device tool takes 64 MiB in all)"
if [ $((size + tree)) -ge $((limit - 1048576)) ]; then
  echo "prepare.sh: within 1 MiB of the device tool's 64 MiB limit" >&2
  exit 1
fi
