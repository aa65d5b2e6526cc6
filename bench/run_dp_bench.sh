#!/usr/bin/env bash
# Data parallelism against threads on the same cores: the same model and
# global batch trained by 1 rank x 2 threads and by 2 MPI ranks x 1 thread
# (ZeRO-1, reduce-scatter overlapped with backward), alternating, on this
# machine. Prints tokens/s of both, the ratio (goal >= 0.95: communication
# hidden behind compute), the exposed communication per step, and the bytes
# rank 0 sent per step against the ring formula for reduce-scatter +
# all-gather, 2 (p-1)/p x 4 bytes x buffer floats.
#
#   bench/run_dp_bench.sh [--config grok-mini] [--batch-size 4] [--global-batch 8]
#                         [--seq-len 256] [--steps 12] [--skip 2] [--rounds 2]
#                         [--build-dir DIR] [--data DIR]
#
# Uses build/ (scripts/build.sh) and prepares the Debian fortunes into
# build/dp-bench-data once. Figures only: nothing here asserts a time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG=grok-mini
BATCH=4
GLOBAL=8
SEQ=256
STEPS=12
SKIP=2
ROUNDS=2
BUILD="$ROOT/build"
DATA=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) CONFIG="$2"; shift 2 ;;
    --batch-size) BATCH="$2"; shift 2 ;;
    --global-batch) GLOBAL="$2"; shift 2 ;;
    --seq-len) SEQ="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --skip) SKIP="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --build-dir) BUILD="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run_dp_bench.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if (( STEPS <= SKIP )); then echo "run_dp_bench.sh: --steps must exceed --skip" >&2; exit 2; fi
BIN="$BUILD/supercluster"
[[ -x "$BIN" ]] || { echo "run_dp_bench.sh: $BIN missing; run scripts/build.sh" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --mca btl self,vader)

if [[ -z "$DATA" ]]; then
  DATA="$BUILD/dp-bench-data"
  if [[ ! -f "$DATA/tokenizer.model" ]]; then
    echo "== preparing the fortunes into $DATA"
    "$BIN" prepare --input /usr/share/games/fortunes --out "$DATA" --vocab-size 8192 >/dev/null
  fi
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
COMMON=(train --config "$CONFIG" --data "$DATA" --batch-size "$BATCH" --global-batch "$GLOBAL" --seq-len "$SEQ"
        --steps "$STEPS" --warmup 1 --eval-every 0 --eval-batches 1 --checkpoint-every 0 --keep-checkpoints 1)

# Tokens/s over steps SKIP+1..STEPS from metrics.jsonl (elapsed_s is the
# training clock), and rank 0's mean bytes sent and exposed wait per step.
summarize() {
  python3 - "$1" "$SKIP" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
skip = int(sys.argv[2])
timed = lines[skip:]
seconds = timed[-1]["elapsed_s"] - lines[skip - 1]["elapsed_s"]
tokens = timed[-1]["tokens"] - lines[skip - 1]["tokens"]
bytes_ = sum(l.get("comm_bytes", 0) for l in timed) / len(timed)
wait = sum(l.get("comm_wait_s", 0.0) for l in timed) / len(timed)
print(f"{tokens / seconds:.1f} {seconds / len(timed):.4f} {bytes_:.0f} {wait:.4f}")
EOF
}

echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $CONFIG, global batch $GLOBAL x $SEQ tokens (micro-batch $BATCH), $STEPS steps, first $SKIP not timed, $ROUNDS rounds"
best_threads=0; best_ranks=0; ranks_line=""
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$TMP/threads" "$TMP/ranks"
  "$BIN" "${COMMON[@]}" --out "$TMP/threads" --threads 2 >"$TMP/threads.log" 2>&1 ||
    { cat "$TMP/threads.log" >&2; exit 1; }
  "${MPIRUN[@]}" -np 2 "$BIN" "${COMMON[@]}" --out "$TMP/ranks" --threads 1 >"$TMP/ranks.log" 2>&1 ||
    { cat "$TMP/ranks.log" >&2; exit 1; }
  read -r t_tps t_step _ _ <<<"$(summarize "$TMP/threads/metrics.jsonl")"
  read -r r_tps r_step r_bytes r_wait <<<"$(summarize "$TMP/ranks/metrics.jsonl")"
  printf "   round %d: 1 rank x 2 threads %8.1f tok/s (%.3f s/step) | 2 ranks x 1 thread %8.1f tok/s (%.3f s/step, %.3f s exposed communication)\n" \
    "$round" "$t_tps" "$t_step" "$r_tps" "$r_step" "$r_wait"
  if python3 -c "import sys; sys.exit(0 if float('$t_tps') > float('$best_threads') else 1)"; then best_threads=$t_tps; fi
  if python3 -c "import sys; sys.exit(0 if float('$r_tps') > float('$best_ranks') else 1)"; then
    best_ranks=$r_tps; ranks_line="$r_bytes $r_wait $r_step"
  fi
done
floats=$(grep -o 'over [0-9]* floats' "$TMP/ranks.log" | head -1 | grep -o '[0-9]*')
read -r bytes wait step <<<"$ranks_line"
python3 - "$best_threads" "$best_ranks" "$bytes" "$floats" "$wait" "$step" <<'EOF'
import sys
threads, ranks, sent, floats, wait, step = (float(x) for x in sys.argv[1:])
ring = 2 * (2 - 1) / 2 * 4 * floats
print(f"== best of the rounds: 1 rank x 2 threads {threads:.1f} tok/s, 2 ranks x 1 thread {ranks:.1f} tok/s")
print(f"   ratio (2 ranks / 2 threads) {ranks / threads:.3f}   (goal >= 0.95)")
print(f"   exposed communication {wait:.3f} s of {step:.3f} s per step ({100 * wait / step:.1f}%)")
print(f"   bytes sent per step by rank 0: {sent / 1e6:.2f} MB; ring reduce-scatter + all-gather of "
      f"{floats:.0f} floats: 2(p-1)/p x 4 B x N = {ring / 1e6:.2f} MB ({sent / ring:.4f}x; the rest is the "
      f"gradient-norm chunk sums and step statistics)")
EOF
