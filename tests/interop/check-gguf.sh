#!/usr/bin/env bash
# Writes a synthetic GGUF with Lathe's writer (or takes FILE) and checks that an independent
# parser, @huggingface/gguf (npm), sees the same tensors as `lathe inspect`.
#   tests/interop/check-gguf.sh [FILE]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tests/interop/gguf-js"
file="${1:-}"
if [ -z "$file" ]; then
  file="$(mktemp -d)/synthetic-q4_0.gguf"
  "$root/lathe" synthetic --type Q4_0 -o "$file" >/dev/null
fi
(cd "$here" && npm install --silent --no-audit --no-fund >/dev/null)
theirs="$(node "$here/list-tensors.mjs" "$file")"
ours="$("$root/lathe" inspect "$file" 2>/dev/null | awk '/^  name /{on=1; next} on && NF>=4 {print $1, $2, $3" "$4}')"
if [ "$theirs" == "$ours" ]; then
  echo "OK: @huggingface/gguf and lathe inspect agree on $(echo "$ours" | wc -l) tensors of $file"
else
  diff <(echo "$theirs") <(echo "$ours") || true
  echo "MISMATCH between @huggingface/gguf and lathe inspect for $file" >&2
  exit 1
fi
