#!/usr/bin/env bash
# The README's main command: install, build, then the main job on a real
# corpus Debian ships, the fortune cookie collections (English, German,
# Italian; about 7 MB of UTF-8 text): prepare a tokenizer and token shards,
# train the grok-mini model for about ten minutes on the CPU, and generate.
#   TIME_LIMIT_MIN (default 11) bounds training; STEPS (default 1000) sets
#   the length of the run's learning-rate schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh supercluster  # only what the main job runs, not the test suite

data_dir="${DATA_DIR:-data/fortunes}"
run_dir="${RUN_DIR:-runs/grok-mini-fortunes}"
steps="${STEPS:-1000}"
time_limit="${TIME_LIMIT_MIN:-11}"

echo
echo "== prepare: tokenizer + token shards from /usr/share/games/fortunes -> $data_dir"
build/supercluster prepare --input /usr/share/games/fortunes --out "$data_dir" --vocab-size 8192

echo
echo "== train: grok-mini on $data_dir -> $run_dir (at most $time_limit minutes)"
resume=()
if [[ -f "$run_dir/checkpoints/latest" ]]; then
  resume=(--resume)  # a run left by an earlier quickstart continues instead of starting over
elif [[ -e "$run_dir/metrics.jsonl" || -d "$run_dir/checkpoints" ]]; then
  echo "(an earlier run in $run_dir stopped before its first checkpoint: starting over)"
  resume=(--overwrite)
fi
build/supercluster train --config grok-mini --data "$data_dir" --out "$run_dir" \
  --steps "$steps" --batch-size 8 --seq-len 256 --lr 2e-3 --eval-every 100 --checkpoint-every 250 \
  --time-limit "$time_limit" "${resume[@]}"
echo "loss curve: $run_dir/loss.svg   metrics: $run_dir/metrics.jsonl"

for prompt in "Q: What is the difference between" "Der Mensch ist" "A computer"; do
  echo
  echo "== generate: \"$prompt\""
  build/supercluster generate --checkpoint "$run_dir" --prompt "$prompt" --max-tokens 80 \
    --temperature 0.8 --top-p 0.95 --seed 1
done
