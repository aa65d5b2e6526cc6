#!/usr/bin/env bash
# Runs one fuzz target over its seed corpus, then for SECONDS on new inputs
# grown from a copy of it (the corpus in the tree is never written). Any
# crash, sanitizer report, escaped exception, timeout (10 s per input) or
# 2 GB of memory fails, and the input that did it is kept and named.
#   fuzz/run_fuzzer.sh FUZZER CORPUS_DIR [SECONDS]
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=${3:-8}
work=$(mktemp -d "${TMPDIR:-/tmp}/sc_fuzz_run_XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/artifacts"
cp -r "$corpus"/. "$work/corpus/"
common=(-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" -print_final_stats=1)
status=0
# Every seed once, as it is.
"$fuzzer" "${common[@]}" -runs=0 "$work/corpus" >"$work/log" 2>&1 || status=$?
if ((status == 0 && seconds > 0)); then
  "$fuzzer" "${common[@]}" -max_total_time="$seconds" "$work/corpus" >>"$work/log" 2>&1 || status=$?
fi
if ((status != 0)); then
  tail -n 60 "$work/log"
  for artifact in "$work"/artifacts/*; do
    [[ -e $artifact ]] || continue
    kept="${TMPDIR:-/tmp}/$(basename "$fuzzer")-$(basename "$artifact")"
    cp "$artifact" "$kept"
    echo "run_fuzzer: input that failed kept as $kept (add it to $corpus once fixed)"
  done
  exit 1
fi
grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|cov: " "$work/log" | tail -n 3
