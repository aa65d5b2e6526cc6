#!/usr/bin/env bash
# Configures (once) and builds supercluster into build/ (or $BUILD_DIR).
#   scripts/build.sh                 everything: the binary, tests, benchmarks
#   scripts/build.sh supercluster    only the named targets (the quickstart's)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build}"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build "$build_dir" --parallel "$(nproc)" "${targets[@]}"
