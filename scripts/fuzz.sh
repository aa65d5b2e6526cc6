#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, one after the
# other on one core, growing a working corpus in fuzz-work/ (not in git)
# from the seeds in fuzz/corpus/. Prints, per target, executions, coverage
# and what it found; a crash stops that target and keeps its input in
# fuzz-work/crashes/. docs/reliability.md has the runs behind its table.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (default 300 s, all targets)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
shift || true
all=(model_config cluster safetensors shard manifest trainer_state metrics_line tokenizer cli_flags corpus request_body)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
fuzzers=()
for t in "${targets[@]}"; do fuzzers+=("${t}_fuzzer"); done
scripts/build.sh --sanitize "${fuzzers[@]}" >/dev/null
build_dir="${BUILD_DIR:-build-sanitize}"
work=fuzz-work
mkdir -p "$work/crashes" "$work/logs"
printf '%-14s %8s %12s %10s %8s %8s %s\n' target seconds executions "exec/s" cov features result
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t"
  log="$work/logs/$t.log"
  status=0
  "$build_dir/fuzz/${t}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/crashes/$t-" "$work/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 || status=$?
  execs=$(grep -oP 'stat::number_of_executed_units: *\K[0-9]+' "$log" || echo "?")
  rate=$(grep -oP 'stat::average_exec_per_sec: *\K[0-9]+' "$log" || echo "?")
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  cov=$(grep -oP 'cov: \K[0-9]+' <<<"$last" || echo "?")
  ft=$(grep -oP 'ft: \K[0-9]+' <<<"$last" || echo "?")
  result="no crash"
  if ((status != 0)); then
    result="FAILED (exit $status): $(grep -m1 -E 'ERROR: |runtime error|escaped exception|Timeout|out-of-memory' "$log" || echo 'see log')"
    failed=1
  fi
  printf '%-14s %8s %12s %10s %8s %8s %s\n' "$t" "$seconds" "$execs" "$rate" "$cov" "$ft" "$result"
done
exit $failed
