#!/usr/bin/env bash
# The README's test command: install dependencies, build, run every test;
# then the same suite again built with clang under AddressSanitizer and
# UndefinedBehaviorSanitizer, with the fuzz targets run over their seed
# corpora and for a few seconds of new inputs each (docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/check_layering.sh   # the include rules of docs/architecture.md, before a long build
scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure --parallel "$(nproc)" --timeout 600)
echo "test: the suite again under ASan + UBSan, and the fuzz targets"
BUILD_DIR=build-sanitize scripts/build.sh --sanitize
(cd build-sanitize && ctest --output-on-failure --parallel "$(nproc)" --timeout 900)
