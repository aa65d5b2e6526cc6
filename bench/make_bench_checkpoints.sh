#!/usr/bin/env bash
# Checkpoints for bench/serve_bench.py: grok-mini and gpt2-124m after ONE
# training step. Decode speed does not depend on what the weights learned,
# so an (almost) untrained model times the same as a trained one.
#
#   bench/make_bench_checkpoints.sh [--binary build/supercluster] [--work bench-work]
#                                   [--models grok-mini,gpt2-124m] [--threads 2] [--force]
#
# For each model: `prepare` the fortune cookie corpus (/usr/share/games/fortunes,
# as scripts/quickstart.sh does) with a tokenizer of exactly the model's
# vocab_size (the trainer refuses shards of any other vocabulary: grok-mini
# 8192, gpt2-124m 50304), then `train --steps 1 --batch-size 1 --seq-len 64`.
# Writes WORK/data/fortunes-VOCAB/ and WORK/runs/MODEL/ (gitignored); a
# model whose run already has a checkpoint is skipped unless --force.
# Takes about 2.5 minutes on 2 cores, most of it the 50304-token BPE
# tokenizer (about 80 s); gpt2-124m's checkpoint is 1.4 GB (weights + AdamW).
set -euo pipefail
cd "$(dirname "$0")/.."

binary="build/supercluster"
work="bench-work"
models="grok-mini,gpt2-124m"
threads=2
force=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {print}' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x "$binary" ]] || { echo "error: $binary is not built (scripts/build.sh supercluster)" >&2; exit 1; }
corpus=/usr/share/games/fortunes
[[ -d "$corpus" ]] || { echo "error: $corpus is missing (scripts/setup.sh installs the fortunes packages)" >&2; exit 1; }

IFS=, read -ra model_list <<<"$models"
for model in "${model_list[@]}"; do
  # The model's vocabulary size: the rows of its embedding in train --dry-run's table.
  vocab="$("$binary" train --config "$model" --dry-run 2>&1 |
    sed -n 's/^model\.embed_tokens\.weight *\[\([0-9][0-9]*\),.*/\1/p' | head -1)"
  [[ -n "$vocab" ]] || { echo "error: could not read the vocab size of $model from train --dry-run" >&2; exit 1; }
  data="$work/data/fortunes-$vocab"
  run="$work/runs/$model"
  if [[ -f "$run/checkpoints/latest" && $force == 0 ]]; then
    echo "== $model: $run has a checkpoint already (--force to redo)"
    continue
  fi
  if [[ ! -f "$data/prepare.json" ]]; then
    echo "== prepare: fortunes, a $vocab-token tokenizer -> $data"
    nice "$binary" prepare --input "$corpus" --out "$data" --vocab-size "$vocab" --threads "$threads"
  fi
  echo "== train: $model, 1 step -> $run"
  nice "$binary" train --config "$model" --data "$data" --out "$run" --steps 1 --batch-size 1 --seq-len 64 \
    --eval-batches 1 --threads "$threads" --overwrite
done
echo "checkpoints: $(printf "$work/runs/%s " "${model_list[@]}")"
