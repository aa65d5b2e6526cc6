#!/usr/bin/env bash
# The layering of src/ (docs/architecture.md): a folder may include its own
# headers, core/'s, and those of the folders listed for it below; nothing
# else. Prints each include that breaks the rule as FILE:LINE and exits 1.
#   scripts/check_layering.sh [SRC_DIR]     (default: the repository's src/)
set -euo pipefail
src="${1:-$(cd "$(dirname "$0")/.." && pwd)/src}"
src="${src%/}"

declare -A allowed=(
  [core]=""
  [kernels]=""
  [dist]=""
  [data]=""
  [run]=""
  [model]="kernels"
  [train]="kernels model dist data run"
  [launch]="run"
  [serve]="model data run"
  [plan]="model kernels"  # kernels: `plan --calibrate` times the project's own GEMM and attention
  [cli]="*"
)

if [[ ! -d "$src" ]]; then
  echo "check_layering: $src is not a directory" >&2
  exit 2
fi

violations=0
checked=0
while IFS= read -r -d '' file; do
  relative="${file#"$src"/}"
  shown="$(basename "$src")/$relative"
  folder="${relative%%/*}"
  if [[ -z "${allowed[$folder]+set}" ]]; then
    echo "$shown: src/$folder/ is not in the layering map of scripts/check_layering.sh (add it, and to docs/architecture.md)"
    violations=$((violations + 1))
    continue
  fi
  checked=$((checked + 1))
  [[ "${allowed[$folder]}" == "*" ]] && continue
  while IFS=: read -r line included; do
    target="${included%%/*}"
    [[ "$target" == "$folder" || "$target" == "core" ]] && continue
    [[ " ${allowed[$folder]} " == *" $target "* ]] && continue
    # Only the project's folders are layered; other quoted includes (a test
    # helper in tests/) are not.
    [[ -n "${allowed[$target]+set}" ]] || continue
    permitted="core${allowed[$folder]:+, ${allowed[$folder]// /, }}"
    echo "$shown:$line: $folder/ may not include $included ($folder/ may include $permitted)"
    violations=$((violations + 1))
  done < <(grep -n -o -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z_]+/[^"]+"' "$file" |
           sed -E 's/^([0-9]+):.*"([^"]+)"$/\1:\2/')
done < <(find "$src" -type f \( -name '*.h' -o -name '*.cc' \) -print0 | sort -z)

if ((violations > 0)); then
  echo "check_layering: $violations include(s) break the layering of docs/architecture.md" >&2
  exit 1
fi
echo "check_layering: $checked files under $src follow the layering"
