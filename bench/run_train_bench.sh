#!/usr/bin/env bash
# Trains the same model with supercluster and with PyTorch on this machine, one
# after the other, and prints tokens/s, step time, model TFLOP/s and % of each
# side's own measured fp32 matmul peak, plus the ratio supercluster / PyTorch.
#
#   bench/run_train_bench.sh [--config gpt2-124m] [--batch-size 4] [--seq-len 256]
#                            [--threads 2] [--steps 8] [--warmup 2] [--build-dir DIR]
#                            [--torch-args "..."]    (extra flags for pytorch_peer.py)
#                            [--wait-idle SECONDS]   (wait up to this long for other jobs to finish)
#                            [--retries N]           (rerun a side that shared the CPUs, up to N times)
#
# Builds train_step_bench if needed (CMake + Ninja in build-bench/). PyTorch
# (Debian's python3-torch, for /usr/bin/python3; scripts/setup.sh --torch)
# gets its fair best: OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs (the
# environment here says Haswell, which halves sgemm) and ATEN_CPU_CAPABILITY=avx512
# (torch 1.13 picks AVX2 kernels on this CPU by itself), jemalloc preloaded when
# installed, configured to keep freed pages for the next step (measured best
# of several allocator settings, see bench/README.md),
# OMP_WAIT_POLICY=PASSIVE, OMP_NUM_THREADS / OPENBLAS_NUM_THREADS = --threads.
# Figures only: nothing here asserts a time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG=gpt2-124m
BATCH=4
SEQ=256
THREADS=2
STEPS=8
WARMUP=2
BUILD="$ROOT/build-bench"
TORCH_ARGS=""
WAIT_IDLE=0
RETRIES=0
PYTHON=/usr/bin/python3

while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) CONFIG="$2"; shift 2 ;;
    --batch-size) BATCH="$2"; shift 2 ;;
    --seq-len) SEQ="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --build-dir) BUILD="$2"; shift 2 ;;
    --torch-args) TORCH_ARGS="$2"; shift 2 ;;
    --wait-idle) WAIT_IDLE="$2"; shift 2 ;;
    --retries) RETRIES="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run_train_bench.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

# ---------------------------------------------------------------- build
if [[ ! -f "$BUILD/build.ninja" && ! -f "$BUILD/Makefile" ]]; then
  echo "== configuring $BUILD"
  if command -v ninja >/dev/null; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  else
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
fi
echo "== building train_step_bench"
BENCH="$BUILD/bench/train_step_bench"
if ! cmake --build "$BUILD" --target train_step_bench >"$BUILD/run_train_bench.build.log" 2>&1; then
  if [[ -x "$BENCH" ]]; then
    echo "   WARNING: the build failed (see $BUILD/run_train_bench.build.log); using the existing $BENCH"
  else
    cat "$BUILD/run_train_bench.build.log" >&2
    exit 1
  fi
fi

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "run_train_bench.sh: $PYTHON has no torch; install it with scripts/setup.sh --torch" >&2
  exit 1
fi

# ---------------------------------------------------------------- machine
# Percent of all CPUs busy over one second (other users' builds and tests).
cpu_busy() {
  local a b c d e f g h t1 i1 t2 i2
  read -r _ a b c d e f g h _ </proc/stat; t1=$((a + b + c + d + e + f + g + h)); i1=$((d + e))
  sleep 1
  read -r _ a b c d e f g h _ </proc/stat; t2=$((a + b + c + d + e + f + g + h)); i2=$((d + e))
  echo $((100 * ((t2 - t1) - (i2 - i1)) / (t2 - t1 > 0 ? t2 - t1 : 1)))
}
BUSY=$(cpu_busy)
WAITED=0
while [[ $BUSY -gt 15 && $WAITED -lt $WAIT_IDLE ]]; do
  sleep 4; WAITED=$((WAITED + 5)); BUSY=$(cpu_busy)
done
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores;" \
     "${BUSY}% busy before the run (load average $(cut -d' ' -f1-3 /proc/loadavg))"
if [[ $BUSY -gt 15 ]]; then
  echo "   WARNING: other processes are using the CPUs; both sides share them, figures will be low and noisy"
  echo "   (--wait-idle SECONDS waits for a quiet machine):"
  ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 20 { printf "     %5.1f%% %s\n", $1, $2 }' | head -5
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$BENCH" --config "$CONFIG" --print-config >"$TMP/config.json"
COMMON=(--batch-size "$BATCH" --seq-len "$SEQ" --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP")

# ---------------------------------------------------------------- supercluster
echo "== supercluster: $CONFIG, batch $BATCH x $SEQ, $THREADS threads, $STEPS steps after $WARMUP warmup"
# A side whose timed steps shared the CPUs with other processes (> 5% of them)
# is run again, up to --retries times, after waiting for a quiet machine.
others_pct() { "$PYTHON" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["other_processes_cpu_pct"]))' "$1"; }
wait_idle() {
  local waited=0 busy
  busy=$(cpu_busy)
  while [[ $busy -gt 15 && $waited -lt $WAIT_IDLE ]]; do sleep 4; waited=$((waited + 5)); busy=$(cpu_busy); done
}
for ((attempt = 0; ; attempt++)); do
  "$BENCH" --config "$CONFIG" "${COMMON[@]}" --json >"$TMP/sc.json"
  [[ $(others_pct "$TMP/sc.json") -le 5 || $attempt -ge $RETRIES ]] && break
  echo "   other processes used $(others_pct "$TMP/sc.json")% of the CPUs; running supercluster again"
  wait_idle
done
FLOPS_PER_TOKEN=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["flops_per_token"])' "$TMP/sc.json")

# ---------------------------------------------------------------- PyTorch
TORCH_ENV=(OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS")
if grep -q -m1 -w avx512f /proc/cpuinfo; then
  TORCH_ENV+=(OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx512)
fi
JEMALLOC=""
for lib in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 \
           /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2; do
  if [[ -f "$lib" ]]; then JEMALLOC="$lib"; break; fi
done
if [[ -n "$JEMALLOC" ]]; then
  TORCH_ENV+=(LD_PRELOAD="$JEMALLOC${LD_PRELOAD:+:$LD_PRELOAD}"
              MALLOC_CONF="narenas:1,dirty_decay_ms:-1,muzzy_decay_ms:-1")
fi
echo "== PyTorch: ${TORCH_ENV[*]}"
for ((attempt = 0; ; attempt++)); do
  # shellcheck disable=SC2086
  env "${TORCH_ENV[@]}" "$PYTHON" "$ROOT/bench/pytorch_peer.py" --config-json "$TMP/config.json" "${COMMON[@]}" \
    --flops-per-token "$FLOPS_PER_TOKEN" --json $TORCH_ARGS >"$TMP/torch.json"
  [[ $(others_pct "$TMP/torch.json") -le 5 || $attempt -ge $RETRIES ]] && break
  echo "   other processes used $(others_pct "$TMP/torch.json")% of the CPUs; running PyTorch again"
  wait_idle
done

# ---------------------------------------------------------------- table
"$PYTHON" - "$TMP/sc.json" "$TMP/torch.json" <<'EOF'
import json, sys
sc, pt = (json.load(open(p)) for p in sys.argv[1:3])
rows = [
    ("tokens/s", "tokens_per_s", "{:.1f}"),
    ("step time, mean (s)", "step_time_s", "{:.3f}"),
    ("step time, min (s)", "step_time_min_s", "{:.3f}"),
    ("  forward (s)", "forward_s", "{:.3f}"),
    ("  backward (s)", "backward_s", "{:.3f}"),
    ("  clip + AdamW (s)", "optimizer_s", "{:.3f}"),
    ("model TFLOP/s", "model_tflops", "{:.3f}"),
    ("own fp32 matmul peak (GFLOP/s)", "peak_gflops", "{:.1f}"),
    ("% of own peak", "pct_of_peak", "{:.1f}%"),
    ("loss, first -> last step", None, None),
    ("other processes' CPU share", "other_processes_cpu_pct", "{:.1f}%"),
]
print()
print(f"{sc['config']}: batch {sc['batch_size']} x {sc['seq_len']} tokens, fp32, {sc['threads']} threads, "
      f"{sc['steps']} timed steps after {sc['warmup']} warmup; "
      f"{sc['flops_per_token'] / 1e6:.1f} MFLOP/token (model_flops_per_token: 6N + 12·L·T·Hq·D)")
print(f"  supercluster BLAS: {sc['blas']}")
print(f"  PyTorch {pt['torch']}: forward '{pt['variant']}', AdamW foreach={pt['adamw_foreach']}; "
      + "; ".join(pt["notes"]))
print()
w = 32
print(f"{'':<{w}} {'supercluster':>14} {'PyTorch':>14}")
for label, key, fmt in rows:
    if key is None:
        a = f"{sc['loss_first']:.3f}->{sc['loss_last']:.3f}"
        b = f"{pt['loss_first']:.3f}->{pt['loss_last']:.3f}"
    else:
        a, b = fmt.format(sc[key]), fmt.format(pt[key])
    print(f"{label:<{w}} {a:>14} {b:>14}")
ratio = sc["tokens_per_s"] / pt["tokens_per_s"]
busy = max(sc["other_processes_cpu_pct"], pt["other_processes_cpu_pct"])
print()
print(f"ratio supercluster / PyTorch (tokens/s): {ratio:.2f}   (goal >= 1.0)")
if busy > 5:
    print(f"WARNING: other processes used up to {busy:.0f}% of the CPUs while a side was timed; "
          "the ratio is not trustworthy; run again on a quiet machine (--wait-idle).")
print("Same FLOP definition on both sides; each side's % is against the fp32 2048^3 matmul peak it measured "
      "itself (supercluster: sgemm split over its pool; PyTorch: torch.mm).")
EOF
