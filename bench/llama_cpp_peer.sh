#!/usr/bin/env bash
# llama.cpp's batch-1 decode speed on a model of gpt2-124m's shape, at f32,
# f16 and q8_0, with 2 and 1 threads: the peer for our decode numbers.
#
#   bench/llama_cpp_peer.sh [--llama-build DIR] [--work DIR] [--threads 2,1]
#                           [--tokens 128] [--reps 3] [--types f32,f16,q8_0]
#                           [--wait-idle S] [--retries N] [--json OUT]
#                           [--compare build/bench/decode_bench [--rounds 5]]
#
# 1. llama.cpp: unless --llama-build DIR (or LLAMA_CPP_BUILD=DIR) names a
#    build directory that has bin/llama-bench and bin/llama-quantize, it
#    downloads the llama-cpp-python sdist from PyPI (pip download
#    --no-binary :all: --no-deps llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION),
#    unpacks it in the work dir and builds those two tools from its
#    vendor/llama.cpp (CMake, Release, native CPU, no curl, no tests, no
#    server). A finished build there is reused.
# 2. A Python venv in the work dir with `gguf` and `numpy` from PyPI writes
#    a GGUF of the model's shape (llama architecture, random f32 weights, no
#    tokenizer); llama-quantize makes the f16 and q8_0 files from it.
# 3. llama-bench -p 0 -n TOKENS -r REPS -t T -o json per file and T (its
#    tgN test: batch-1 decode from an empty KV cache), then a table and
#    a JSON file (default WORK/results.json). Each run reports the share of
#    CPU time other processes took (/proc/stat); --wait-idle S waits up to S
#    seconds for idle CPUs before each run, --retries N re-runs a disturbed
#    one (over 5%) up to N times and keeps the least disturbed.
#
# With --compare, step 3 instead runs llama-bench and our decode_bench in
# one run, interleaved round by round at the first --threads value: f32 vs
# our fp32, f16 vs bf16, q8_0 vs int8, and prints each side's median and
# their ratio (decode_bench needs a build: scripts/build.sh decode_bench).
#
# The work dir (default bench-work/llama.cpp, gitignored) holds everything
# this writes; nothing is installed outside it.
set -euo pipefail
cd "$(dirname "$0")/.."

work="bench-work/llama.cpp"
llama_build="${LLAMA_CPP_BUILD:-}"
threads="2,1"
tokens=128
reps=3
types="f32,f16,q8_0"
json_out=""
wait_idle=0
retries=0
compare=""
rounds=5
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --llama-build) llama_build="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --tokens) tokens="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    --json) json_out="$2"; shift 2 ;;
    --wait-idle) wait_idle="$2"; shift 2 ;;
    --retries) retries="$2"; shift 2 ;;
    --compare) compare="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {print}' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$work"
work="$(cd "$work" && pwd)"
json_out="${json_out:-$work/results.json}"
python="${PYTHON:-python3}"

# --- 1. llama.cpp -----------------------------------------------------------
have_tools() { [[ -x "$1/bin/llama-bench" && -x "$1/bin/llama-quantize" ]]; }
if [[ -n "$llama_build" ]]; then
  have_tools "$llama_build" || { echo "error: $llama_build has no bin/llama-bench and bin/llama-quantize" >&2; exit 1; }
else
  src="$work/llama_cpp_python-$version/vendor/llama.cpp"
  llama_build="$src/build"
  if ! have_tools "$llama_build"; then
    if [[ ! -f "$src/CMakeLists.txt" ]]; then
      echo "== downloading llama-cpp-python $version (sdist) from PyPI"
      "$python" -m pip download --no-binary :all: --no-deps --dest "$work" "llama-cpp-python==$version"
      tar -xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
    fi
    echo "== building llama-bench and llama-quantize in $llama_build (a few minutes on 2 cores)"
    generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    nice cmake -S "$src" -B "$llama_build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
      -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_EXAMPLES=OFF >/dev/null
    nice cmake --build "$llama_build" --parallel "$(nproc)" --target llama-bench llama-quantize
  fi
fi
echo "== llama.cpp: $llama_build"

# --- 2. the GGUF files ------------------------------------------------------
venv="$work/venv"
if ! "$venv/bin/python" -c 'import gguf, numpy' 2>/dev/null; then
  echo "== Python venv $venv with gguf and numpy from PyPI"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet "gguf==0.19.0" numpy
fi
models="$work/models"
mkdir -p "$models"
stem="$models/gpt2-124m"
if [[ ! -f "$stem-f32.gguf" ]]; then
  echo "== writing $stem-f32.gguf"
  "$venv/bin/python" bench/llama_cpp_peer.py gguf --out "$stem-f32.gguf"
fi
model_args=()
IFS=, read -ra type_list <<<"$types"
for type in "${type_list[@]}"; do
  file="$stem-$type.gguf"
  if [[ ! -f "$file" ]]; then
    case "$type" in f16) qtype=F16 ;; q8_0) qtype=Q8_0 ;; bf16) qtype=BF16 ;; *) qtype="$type" ;; esac
    echo "== llama-quantize $qtype -> $file"
    "$llama_build/bin/llama-quantize" "$stem-f32.gguf" "$file.partial" "$qtype" >"$file.log" 2>&1 ||
      { tail -20 "$file.log" >&2; exit 1; }
    mv "$file.partial" "$file"
  fi
  model_args+=(--model "$type=$file")
done

# --- 3. llama-bench -----------------------------------------------------------
if [[ -n "$compare" ]]; then
  [[ -x "$compare" ]] || { echo "error: --compare $compare is not an executable (scripts/build.sh decode_bench)" >&2; exit 1; }
  echo "== llama-bench vs $compare, interleaved"
  exec "$python" bench/llama_cpp_peer.py compare --llama-bench "$llama_build/bin/llama-bench" \
    --decode-bench "$compare" "${model_args[@]}" --threads "${threads%%,*}" --tokens "$tokens" --rounds "$rounds" \
    --wait-idle "$wait_idle" --json "$json_out"
fi
echo "== llama-bench (other jobs on these cores change the figures; see the last column)"
"$python" bench/llama_cpp_peer.py bench --llama-bench "$llama_build/bin/llama-bench" "${model_args[@]}" \
  --threads "$threads" --tokens "$tokens" --reps "$reps" --wait-idle "$wait_idle" --retries "$retries" \
  --json "$json_out"
