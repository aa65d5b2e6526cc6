#!/usr/bin/env bash
# Writes the seed files of fuzz/corpus/ that come from real runs: a small
# `prepare` (shards, tokenizer), a dense and an MoE model trained a few
# steps (config.json, model.safetensors, manifest.json, trainer_state.json,
# metrics.jsonl), and every cluster preset as `plan --json` reports it.
# Hand-written seeds (command lines, edge cases) are kept as they are.
#   fuzz/make_corpus.sh [SUPERCLUSTER_BINARY]     (default build/supercluster)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build/supercluster}")
corpus=fuzz/corpus
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sc_corpus_XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cat /usr/share/games/fortunes/{computers,science,wisdom} > "$tmp/text.txt"
"$bin" prepare --input "$tmp/text.txt" --out "$tmp/data" --vocab-size 512 --shard-tokens 20000 >/dev/null

tiny_config() {  # NAME EXPERTS
  cat > "$tmp/$1.json" <<JSON
{"model_type": "grok-1", "vocab_size": 512, "hidden_size": 24, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 6, "intermediate_size": 40,
 "max_position_embeddings": 64, "tie_word_embeddings": true, "attn_logit_softcapping": 30.0,
 "sandwich_norm": true, "num_experts": $2, "num_experts_per_tok": $(($2 > 0 ? 2 : 0))}
JSON
}
tiny_config dense 0
tiny_config moe 4
for model in dense moe; do
  "$bin" train --config "$tmp/$model.json" --data "$tmp/data" --out "$tmp/run-$model" --steps 4 --batch-size 2 \
    --seq-len 32 --checkpoint-every 2 --eval-every 2 --eval-batches 1 --threads 1 >/dev/null
  step=$tmp/run-$model/checkpoints/step_00000004
  cp "$step/config.json" "$corpus/model_config/run_$model.json"
  cp "$step/model.safetensors" "$corpus/safetensors/run_$model.safetensors"
  cp "$step/manifest.json" "$corpus/manifest/run_$model.json"
  cp "$step/trainer_state.json" "$corpus/trainer_state/run_$model.json"
  cp "$tmp/run-$model/metrics.jsonl" "$corpus/metrics_line/run_$model.jsonl"
done
cp "$tmp/data/tokenizer.model" "$corpus/tokenizer/prepare_512.model"
cp "$tmp/data/train_0000.bin" "$corpus/shard/train_0000.bin"
cp "$tmp/data/val_0000.bin" "$corpus/shard/val_0000.bin"
for cluster in $("$bin" plan --help | grep -oP 'Cluster preset \(\K[a-z0-9, -]+' | tr ',' ' '); do
  "$bin" plan --model grok-1 --cluster "$cluster" --json | python3 -c \
    'import json,sys; print(json.dumps(json.load(sys.stdin)["cluster_spec"], indent=1))' > "$corpus/cluster/$cluster.json"
done
# The manifest fuzzer's own checkpoint, committed by the trainer's writer.
fuzzer=$(dirname "$bin")/fuzz/manifest_fuzzer
if [[ -x $fuzzer ]]; then
  SC_FUZZ_WRITE_SEED="$PWD/$corpus/manifest/committed.json" "$fuzzer" -runs=0 "$corpus/manifest" >/dev/null 2>&1
fi
# Corpus files as `prepare --input` takes them: plain text (first byte even:
# the target's switch) and JSONL (first byte '{').
{ printf "Text: "; head -c 3000 /usr/share/games/fortunes/de/wusstensie; } > "$corpus/corpus/fortunes_de.txt"
python3 - "$corpus/corpus/web.jsonl" <<'PY'
import json, sys
docs = ["Grok is a language model.", "Zweite Zeile: Grüße aus München.", "नमस्ते दुनिया", "line\nbreaks\n\nand tabs\t"]
with open(sys.argv[1], "w") as out:
    for i, text in enumerate(docs):
        out.write(json.dumps({"text": text, "id": i}, ensure_ascii=(i % 2 == 0)) + "\n")
PY
echo "seeds written under $corpus"
