#!/usr/bin/env bash
# Prompt prefill before and after the batched inference path, two ways:
#  1. in process: build/bench/prefill_bench on the checkpoint and a ~200-token
#     prompt (token-by-token decode vs one batched prefill, same weights);
#  2. end to end: `generate --max-tokens 1 --temperature 0` with that prompt,
#     the baseline binary against this build, interleaved, median wall time.
# Prints figures, asserts nothing.
#
#   bench/run_prefill_bench.sh --baseline /work/baseline/build/supercluster --checkpoint /work/ref/run-qs
set -euo pipefail
cd "$(dirname "$0")/.."
baseline="" checkpoint="" repeats=7 build_dir="${BUILD_DIR:-build}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --baseline) baseline="$2"; shift 2 ;;
    --checkpoint) checkpoint="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$checkpoint" ]] || { echo "--checkpoint DIR is required" >&2; exit 2; }
candidate="$build_dir/supercluster"
cmake --build "$build_dir" --target supercluster prefill_bench >/dev/null

# About 200 tokens with the fortunes tokenizer (prefill_bench prints the count).
prompt="Q: What is the difference between a programmer and a computer scientist? A: The programmer \
writes the program, tests it, ships it and goes home; the computer scientist proves that the program \
terminates, that it is correct, and that no faster program can exist, and then goes to a conference \
to explain why nobody should have written it in the first place. Der Mensch ist ein Wesen, das \
Werkzeuge baut, und der Computer ist das Werkzeug, das Werkzeuge baut. A computer lets you make \
more mistakes faster than any invention in human history, with the possible exceptions of handguns \
and tequila. Never trust a computer you cannot throw out of a window. There are only two hard things \
in computer science: cache invalidation, naming things, and off-by-one errors. Real programmers \
count from zero, and so do all of their fortune cookies, always."

echo "== in process: $build_dir/bench/prefill_bench"
"$build_dir/bench/prefill_bench" --checkpoint "$checkpoint" --prompt "$prompt" --repeats "$repeats"

if [[ -n "$baseline" ]]; then
  echo "== end to end: generate --max-tokens 1 --temperature 0, $repeats runs each, interleaved"
  declare -A times
  for ((r = 0; r < repeats; ++r)); do
    for who in baseline candidate; do
      bin="$baseline"; [[ $who == candidate ]] && bin="$candidate"
      start=$(date +%s.%N)
      "$bin" generate --checkpoint "$checkpoint" --prompt "$prompt" --max-tokens 1 --temperature 0 >/dev/null 2>&1
      end=$(date +%s.%N)
      times[$who]+="$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.6f", b - a}') "
    done
  done
  median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
  b=$(echo "${times[baseline]}" | median)
  c=$(echo "${times[candidate]}" | median)
  printf '  baseline  %s: median %.3f s  (runs: %s)\n' "$baseline" "$b" "${times[baseline]}"
  printf '  candidate %s: median %.3f s  (runs: %s)\n' "$candidate" "$c" "${times[candidate]}"
  printf '  end-to-end ratio baseline / candidate: %.2f\n' "$(awk -v b="$b" -v c="$c" 'BEGIN {print b / c}')"
fi
