#!/usr/bin/env bash
# Installs every Debian package supercluster needs to build, test and run its
# quickstart. Idempotent and quick when everything is present: apt is only
# called when a package is missing.
#   scripts/setup.sh            build + test + quickstart dependencies
#   scripts/setup.sh --torch    also python3-torch (fixture regeneration, bench peer)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libopenblas-dev            # CBLAS sgemm for the CPU backend
  libopenmpi-dev openmpi-bin # data parallelism over MPI
  libsentencepiece-dev sentencepiece  # tokenizer training and encoding
  nlohmann-json3-dev         # config.json, JSONL, metrics
  libcli11-dev               # command-line parsing
  libfmt-dev                 # formatting of progress lines and messages
  libxxhash-dev              # shard and checkpoint checksums
  libcpp-httplib-dev         # HTTP server and test client of `supercluster serve`
  libgtest-dev libgmock-dev  # tests
  libbenchmark-dev           # micro-benchmarks in bench/
  clang libclang-rt-14-dev   # the sanitizer build and libFuzzer targets (docs/reliability.md)
  fortunes fortunes-de fortunes-it  # the quickstart corpus
)
if [[ "${1:-}" == "--torch" ]]; then
  packages+=(python3-torch python3-numpy libjemalloc2)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
