#!/usr/bin/env bash
# Training speed on a shared machine: grok-mini, 1 rank x 2 threads, steps
# 3..10 timed, alone and next to a busy loop (another user's job on one of
# the cores), alternating. Shows what a straggling thread costs the thread
# pool. Figures only: nothing here asserts a time.
#
#   bench/run_contention_bench.sh [--binary build/supercluster] [--rounds 2]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/build/supercluster"
ROUNDS=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) BIN="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "run_contention_bench.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
DATA="$ROOT/build/dp-bench-data"
if [[ ! -f "$DATA/tokenizer.model" ]]; then
  "$BIN" prepare --input /usr/share/games/fortunes --out "$DATA" --vocab-size 8192 >/dev/null
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
run() {  # $1 = 1 with a busy loop
  local hog=""
  rm -rf "$TMP/run"
  if [[ $1 == 1 ]]; then (timeout 300 sh -c 'while :; do :; done') & hog=$!; fi
  "$BIN" train --config grok-mini --data "$DATA" --out "$TMP/run" --steps 10 --batch-size 4 --threads 2 \
      --eval-every 0 --eval-batches 1 --checkpoint-every 0 >/dev/null 2>&1
  [[ -n "$hog" ]] && kill "$hog" 2>/dev/null
  python3 -c "
import json, sys
l = [json.loads(x) for x in open(sys.argv[1])]
print(f\"{(l[-1]['tokens'] - l[2]['tokens']) / (l[-1]['elapsed_s'] - l[2]['elapsed_s']):.0f}\")" "$TMP/run/metrics.jsonl"
}
echo "== $BIN: grok-mini, batch 4 x 256, 2 threads, tokens/s of steps 3..10"
for round in $(seq 1 "$ROUNDS"); do
  echo "   round $round: alone $(run 0) tok/s | next to a busy loop $(run 1) tok/s"
done
