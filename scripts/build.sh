#!/usr/bin/env bash
# Configures (once) and builds supercluster into build/ (or $BUILD_DIR).
#   scripts/build.sh                 everything: the binary, tests, benchmarks
#   scripts/build.sh supercluster    only the named targets (the quickstart's)
#   scripts/build.sh --sanitize [T]  build-sanitize/ (or $BUILD_DIR): clang,
#                                    every target under ASan + UBSan, and the
#                                    libFuzzer targets of fuzz/
set -euo pipefail
cd "$(dirname "$0")/.."
configure=(-DCMAKE_BUILD_TYPE=Release)
build_dir="${BUILD_DIR:-build}"
if [[ "${1:-}" == "--sanitize" ]]; then
  shift
  build_dir="${BUILD_DIR:-build-sanitize}"
  configure+=(-DSUPERCLUSTER_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" "${generator[@]}" "${configure[@]}" >/dev/null
fi
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build "$build_dir" --parallel "$(nproc)" "${targets[@]}"
