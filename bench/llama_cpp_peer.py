#!/usr/bin/env python3
"""Helpers of bench/llama_cpp_peer.sh (llama.cpp's decode speed on our model's shape).

  llama_cpp_peer.py gguf --out F.gguf [--config-json CONFIG] [--seed S]
      writes a Llama-architecture GGUF of gpt2-124m's shape (or of CONFIG, a
      Hugging Face style config.json such as a checkpoint's) with random f32
      weights and no tokenizer; needs the `gguf` and `numpy` packages.
  llama_cpp_peer.py bench --llama-bench BIN --model TYPE=F.gguf ... [--threads 2,1]
      runs `llama-bench -p 0 -n N -r R -t T -o json` once per (model, T),
      prints a table and writes the results as JSON; only the standard library.

llama-bench's text-generation test (tgN) is what we want for batch-1 decode:
for each repetition it clears the KV cache and decodes N tokens one at a
time (a batch of one token, logits of the full vocabulary each time) from
position 0, after one warm-up token; t/s = N / time of the N decodes.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from cpu_load import NCPU, cpu_busy_seconds, wait_idle

# gpt2-124m in src/model/presets.cc. Its FFN is gated GELU (tanh); llama.cpp's
# llama architecture gates with SiLU. Same shapes, same matmuls: the activation
# is a negligible part of a decode step.
GPT2_124M = {
    "vocab_size": 50304,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_key_value_heads": 12,
    "head_dim": 64,
    "intermediate_size": 2048,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": True,
}


def write_gguf(args: argparse.Namespace) -> int:
    import numpy as np
    import gguf

    cfg = dict(GPT2_124M)
    if args.config_json:
        with open(args.config_json) as f:
            given = json.load(f)
        for key in cfg:
            if given.get(key) is not None:
                cfg[key] = given[key]
    if cfg.get("head_dim") in (None, 0):
        cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
    vocab, hidden, layers = cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"]
    heads, kv_heads, head_dim, ffn = (cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"],
                                      cfg["intermediate_size"])

    tmp = args.out + ".partial"  # renamed when complete
    writer = gguf.GGUFWriter(tmp, "llama")
    writer.add_name(args.name)
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(cfg["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    writer.add_vocab_size(vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    # No tokenizer: llama.cpp (src/llama-vocab.cpp) takes "none" as a model
    # without a vocabulary and sizes it from llama.vocab_size. llama-bench
    # only feeds random token ids, so that is all it needs.
    writer.add_tokenizer_model("none")

    rng = np.random.default_rng(args.seed)

    def weight(*shape: int) -> "np.ndarray":
        # numpy [rows, cols] is ggml's ne = [cols, rows]: [out, in] as in HF.
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)

    def ones(n: int) -> "np.ndarray":
        return np.ones(n, dtype=np.float32)

    params = 0

    def add(name: str, array: "np.ndarray") -> None:
        nonlocal params
        params += array.size
        writer.add_tensor(name, array)

    add("token_embd.weight", weight(vocab, hidden))
    for i in range(layers):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", ones(hidden))
        add(p + "attn_q.weight", weight(heads * head_dim, hidden))
        add(p + "attn_k.weight", weight(kv_heads * head_dim, hidden))
        add(p + "attn_v.weight", weight(kv_heads * head_dim, hidden))
        add(p + "attn_output.weight", weight(hidden, heads * head_dim))
        add(p + "ffn_norm.weight", ones(hidden))
        add(p + "ffn_gate.weight", weight(ffn, hidden))
        add(p + "ffn_up.weight", weight(ffn, hidden))
        add(p + "ffn_down.weight", weight(hidden, ffn))
    add("output_norm.weight", ones(hidden))
    if not cfg["tie_word_embeddings"]:
        add("output.weight", weight(vocab, hidden))
    # Tied: no output.weight; llama.cpp then multiplies by token_embd.

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: llama architecture, {params / 1e6:.1f}M parameters, f32, "
          f"vocab {vocab}, hidden {hidden}, {layers} layers, {heads}/{kv_heads} heads of {head_dim}, ffn {ffn}, "
          f"{'tied' if cfg['tie_word_embeddings'] else 'untied'} embeddings", file=sys.stderr)
    return 0


def run_llama_bench(binary: str, model: str, threads: int, tokens: int, reps: int) -> dict:
    cmd = [binary, "-m", model, "-p", "0", "-n", str(tokens), "-t", str(threads), "-r", str(reps), "-o", "json"]
    busy0 = cpu_busy_seconds()
    child0 = os.times()
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    child1 = os.times()
    busy1 = cpu_busy_seconds()
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"llama-bench failed ({done.returncode}): {' '.join(cmd)}")
    results = json.loads(done.stdout)
    if len(results) != 1:
        raise SystemExit(f"llama-bench gave {len(results)} results, expected 1")
    own = (child1.children_user - child0.children_user) + (child1.children_system - child0.children_system)
    other = max(0.0, (busy1 - busy0) - own)
    r = results[0]
    return {
        "command": " ".join(cmd),
        "threads": threads,
        "n_gen": r["n_gen"],
        "avg_ts": r["avg_ts"],
        "stddev_ts": r["stddev_ts"],
        "samples_ts": r["samples_ts"],
        "model_type": r["model_type"],
        "model_size": r["model_size"],
        "model_n_params": r["model_n_params"],
        "flash_attn": r.get("flash_attn"),
        "build_commit": r.get("build_commit"),
        "cpu_info": r.get("cpu_info"),
        "wall_s": wall,
        "other_processes_cpu_pct": 100.0 * other / (wall * NCPU),
    }


def bench(args: argparse.Namespace) -> int:
    models = []
    for spec in args.model:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--model {spec}: expected TYPE=FILE.gguf")
        models.append((name, path))
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    for t in threads:
        for name, path in models:
            print(f"llama-bench tg{args.tokens}: {name}, {t} thread(s) ...", file=sys.stderr, flush=True)
            r = None
            for _ in range(args.retries + 1):
                if args.wait_idle > 0:
                    wait_idle(args.wait_idle)
                again = run_llama_bench(args.llama_bench, path, t, args.tokens, args.reps)
                if r is None or again["other_processes_cpu_pct"] < r["other_processes_cpu_pct"]:
                    r = again
                if r["other_processes_cpu_pct"] <= 5:
                    break
                print(f"  disturbed ({again['other_processes_cpu_pct']:.0f}% other CPU)", file=sys.stderr, flush=True)
            r["weights"] = name
            r["model_file"] = path
            rows.append(r)

    print()
    print(f"llama.cpp llama-bench, tg{args.tokens} (batch-1 decode from an empty context), {args.reps} repetitions")
    print(f"model: {rows[0]['model_n_params'] / 1e6:.1f}M parameters, llama architecture, shape of gpt2-124m")
    print()
    print("| weights | threads | tokens/s (mean ± sd) | ms/token | file MiB | other processes' CPU |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        flag = " (disturbed)" if r["other_processes_cpu_pct"] > 5 else ""
        print(f"| {r['weights']} | {r['threads']} | {r['avg_ts']:.1f} ± {r['stddev_ts']:.1f} | "
              f"{1000.0 / r['avg_ts']:.2f} | {r['model_size'] / 2**20:.0f} | "
              f"{r['other_processes_cpu_pct']:.0f}%{flag} |")
    print()
    if rows and rows[0].get("cpu_info"):
        print(f"cpu: {rows[0]['cpu_info']}; llama.cpp build {rows[0].get('build_commit')}")
    out = {
        "benchmark": "llama.cpp llama-bench text generation (batch-1 decode)",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "n_gen": args.tokens,
        "reps": args.reps,
        "results": rows,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"results: {args.json}")
    return 0


# Our format for each llama.cpp type: the matching precision of the issue
# (f32/fp32, f16/bf16: both 2 bytes a weight, q8_0/int8: both 8-bit with a
# scale per 32 weights).
OURS_FOR = {"f32": "fp32", "f16": "bf16", "q8_0": "int8"}


def run_decode_bench(binary: str, weights: str, threads: int, tokens: int) -> float:
    """Our batch-1 decode tokens/s for one format: one round of decode_bench."""
    cmd = [binary, "--config", "gpt2-124m", "--weights", weights, "--threads", str(threads), "--tokens",
           str(tokens), "--rounds", "1", "--batches", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:])
        raise SystemExit(f"decode_bench failed ({done.returncode}): {' '.join(cmd)}")
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == weights:
            return float(fields[2])
    raise SystemExit(f"decode_bench printed no {weights} row:\n{done.stdout}")


def compare(args: argparse.Namespace) -> int:
    """llama-bench and our decode_bench in one run: for each round, each
    matched pair back to back (llama.cpp then ours), so a neighbour's load
    on the shared cores hits both sides of a pair alike; the median round of
    each side and their ratio per precision."""
    models = []
    for spec in args.model:
        name, _, path = spec.partition("=")
        if name not in OURS_FOR:
            raise SystemExit(f"--model {spec}: compare knows {', '.join(OURS_FOR)}")
        models.append((name, path))
    theirs = {name: [] for name, _ in models}
    ours = {name: [] for name, _ in models}
    disturbed = {name: [] for name, _ in models}
    for round_index in range(args.rounds):
        for name, path in models:
            print(f"round {round_index + 1}/{args.rounds}: llama.cpp {name} vs ours {OURS_FOR[name]} ...",
                  file=sys.stderr, flush=True)
            if args.wait_idle > 0:
                wait_idle(args.wait_idle)
            busy0 = cpu_busy_seconds()
            child0 = os.times()
            start = time.monotonic()
            r = run_llama_bench(args.llama_bench, path, args.threads, args.tokens, 1)
            theirs[name].append(r["avg_ts"])
            ours[name].append(run_decode_bench(args.decode_bench, OURS_FOR[name], args.threads, args.tokens))
            wall = time.monotonic() - start
            child1 = os.times()
            busy1 = cpu_busy_seconds()
            own = (child1.children_user - child0.children_user) + (child1.children_system - child0.children_system)
            other = max(0.0, (busy1 - busy0) - own)
            disturbed[name].append(100.0 * other / (wall * NCPU))

    def median(v: list) -> float:
        v = sorted(v)
        n = len(v)
        return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])

    print()
    print(f"batch-1 decode, tg{args.tokens}, {args.threads} threads, median of {args.rounds} interleaved rounds "
          f"({time.strftime('%Y-%m-%d %H:%M')})")
    print()
    print("| llama.cpp | tok/s | supercluster | tok/s | ratio | rounds (llama.cpp / ours) | other CPU |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for name, _ in models:
        t, o = median(theirs[name]), median(ours[name])
        rows.append({"llama_cpp": name, "llama_cpp_tok_s": theirs[name], "ours": OURS_FOR[name],
                     "ours_tok_s": ours[name], "ratio": o / t, "other_processes_cpu_pct": disturbed[name]})
        spread = " / ".join(",".join(f"{x:.1f}" for x in side) for side in (theirs[name], ours[name]))
        print(f"| {name} | {t:.1f} | {OURS_FOR[name]} | {o:.1f} | {o / t:.2f}x | {spread} | "
              f"{max(disturbed[name]):.0f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "batch-1 decode: llama.cpp llama-bench vs supercluster decode_bench",
                       "date": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": args.threads, "n_gen": args.tokens,
                       "results": rows}, f, indent=2)
        print(f"\nresults: {args.json}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gguf", help="write a random-weight f32 GGUF of the model's shape")
    g.add_argument("--out", required=True)
    g.add_argument("--config-json", help="a Hugging Face style config.json (default: gpt2-124m's shape)")
    g.add_argument("--name", default="supercluster-gpt2-124m-shape")
    g.add_argument("--seed", type=int, default=1337)
    b = sub.add_parser("bench", help="run llama-bench tgN and tabulate")
    b.add_argument("--llama-bench", required=True)
    b.add_argument("--model", action="append", required=True, help="TYPE=FILE.gguf, repeatable")
    b.add_argument("--threads", default="2,1")
    b.add_argument("--tokens", type=int, default=128)
    b.add_argument("--reps", type=int, default=3)
    b.add_argument("--wait-idle", type=float, default=0.0,
                   help="before each run wait up to this many seconds for idle CPUs")
    b.add_argument("--retries", type=int, default=0, help="re-run a disturbed measurement up to N times")
    b.add_argument("--json")
    c = sub.add_parser("compare", help="llama-bench and our decode_bench, interleaved, matched precisions")
    c.add_argument("--llama-bench", required=True)
    c.add_argument("--decode-bench", required=True, help="build/bench/decode_bench")
    c.add_argument("--model", action="append", required=True, help="TYPE=FILE.gguf (f32, f16, q8_0), repeatable")
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--tokens", type=int, default=128)
    c.add_argument("--rounds", type=int, default=5)
    c.add_argument("--wait-idle", type=float, default=0.0)
    c.add_argument("--json")
    args = parser.parse_args()
    if args.command == "gguf":
        return write_gguf(args)
    return bench(args) if args.command == "bench" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
