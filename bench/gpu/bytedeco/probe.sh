#!/usr/bin/env bash
# Whether org.bytedeco:cuda 12.9-9.10-1.5.12 (the design card's dependency) loads on a machine.
#   here:  bash bench/gpu/bytedeco/probe.sh prepare   (fetches its jars, compiles the probe;
#          needs bench/gpu/prepare.sh's jre under bench/gpu/carry)
#   there: bash bench/gpu/bytedeco/probe.sh           (device tool: carry bench/gpu/bytedeco/out
#          and bench/gpu/carry/jre)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="$here/out"
version=12.9-9.10-1.5.12
if [ "${1:-}" = prepare ]; then
  rm -rf "$out" && mkdir -p "$out"
  for artifact in org.bytedeco:cuda:$version org.bytedeco:cuda:$version:jar:linux-x86_64 \
                  org.bytedeco:javacpp:1.5.12 org.bytedeco:javacpp:1.5.12:jar:linux-x86_64; do
    "$root/lathe" mvn -q dependency:copy -Dartifact="$artifact" -DoutputDirectory="$out" >/dev/null
  done
  java_home="$("$root/lathe" mvn -v 2>/dev/null | sed -n 's/^.*runtime: \(.*\)$/\1/p' | head -n1)"
  "$java_home/bin/javac" -d "$out" "$here/BytedecoProbe.java"
  du -sh "$out"
  exit 0
fi
java="$root/bench/gpu/carry/jre/bin/java"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
echo "libcudart.so.12 on the loader path: $(ldconfig -p | grep -c 'libcudart.so.12' || true)"
"$java" -cp "$out:$out/*" BytedecoProbe
