#!/usr/bin/env bash
# The README's main command: install, build, then run the main job on a real
# corpus Debian ships: the fortune cookie collections (English, German,
# Italian; about 7 MB of UTF-8 text).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh

data_dir="${DATA_DIR:-data/fortunes}"
echo
echo "== prepare: tokenizer + token shards from /usr/share/games/fortunes -> $data_dir"
build/supercluster prepare --input /usr/share/games/fortunes --out "$data_dir" --vocab-size 8192
