#!/usr/bin/env bash
# scripts/check_layering.sh passes on the tree as it is, and fails on a copy
# with one include that breaks the layering, naming its file and line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$root/scripts/check_layering.sh" "$root/src" >/dev/null

cp -r "$root/src" "$tmp/src"
# Plant the include after model/config.h's first line: model/ sits below train/.
sed -i '1a #include "train/trainer.h"' "$tmp/src/model/config.h"
if output="$("$root/scripts/check_layering.sh" "$tmp/src" 2>&1)"; then
  echo "FAIL: the check passed a tree in which model/config.h includes train/trainer.h" >&2
  exit 1
fi
expected='src/model/config.h:2: model/ may not include train/trainer.h (model/ may include core, kernels)'
if [[ "$output" != *"$expected"* ]]; then
  echo "FAIL: expected '$expected' in:" >&2
  echo "$output" >&2
  exit 1
fi
# A folder the map does not know is an error too.
mkdir "$tmp/src2" && cp -r "$root/src/core" "$tmp/src2/core" && mkdir "$tmp/src2/stray"
echo '#include "core/status.h"' > "$tmp/src2/stray/thing.cc"
if output="$("$root/scripts/check_layering.sh" "$tmp/src2" 2>&1)" || [[ "$output" != *"src/stray/ is not in the layering map"* ]]; then
  echo "FAIL: an unknown folder was not reported:" >&2
  echo "$output" >&2
  exit 1
fi
echo "layering check: passes on src/, catches a planted include and an unknown folder"
