#!/usr/bin/env python3
"""Decode speed and concurrency of `supercluster serve`.

  bench/serve_bench.py --checkpoint RUN [--binary build/supercluster] [--weights W]
                       [--threads 2] [--tokens 128] [--streams 1,4,16] [--rounds 3]
                       [--prompt TEXT] [--wait-idle S] [--retries N] [--json OUT]

Starts `supercluster serve --checkpoint RUN --port 0 --slots MAX(STREAMS)
--threads T [--weights W]` (the port is read from its `listening on
http://HOST:PORT` line on stderr), waits for GET /health to answer 200, warms
up with one round at the highest concurrency, then for each concurrency
level sends that many streaming /v1/completions requests at once (the same
short prompt, `max_tokens` TOKENS, `ignore_eos`, temperature 0), ROUNDS times
over all levels (the median round of each level is the summary), and
measures:

- time to first token (TTFT): from sending the request to the first chunk
  that carries text (queue wait and prefill included); p50 and max over the
  streams;
- per-stream decode tokens/s: (completion tokens - 1) / (time of the last
  chunk - time of the first), the rate after the first token;
- total tokens/s: every stream's completion tokens / the wall time from the
  first request sent to the last stream finished.

Token counts come from the final chunk's `usage.completion_tokens`: a chunk
carries whatever text the server had (one token's text or several, and a
token whose text could still be part of a UTF-8 character is held back), so
counting chunks would not count tokens. The server's /metrics give the
number of engine steps per level, hence the mean decode batch.

Only the Python standard library (http.client and threads). The share of
CPU time other processes took during each level is read from /proc/stat
(all CPU time less the server's and this script's); above 5% the row is
marked as disturbed. --wait-idle S waits up to S seconds for idle CPUs before
each measurement, and --retries N measures a disturbed level again, up to N
more times, keeping the least disturbed measurement.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

from cpu_load import HZ, NCPU, cpu_busy_seconds, wait_idle

def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (every thread), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        after_name = f.read().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / HZ


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class Server:
    """A `supercluster serve` child on a free port; its stderr is kept."""

    def __init__(self, cmd: list[str], log_path: str | None, start_timeout: float):
        self.cmd = cmd
        self.lines: list[str] = []
        self.host = self.port = None
        self._found = threading.Event()
        self._log = open(log_path, "w") if log_path else None
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, errors="replace")
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + start_timeout
        while not self._found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._fail("did not print its 'listening on' line")
        while True:
            status = self._health()
            if status == 200:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._fail(f"/health did not answer 200 (last: {status})")
            time.sleep(0.2)

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if self._log:
                self._log.write(line)
                self._log.flush()
            m = re.search(r"listening on http://([^:\s]+):(\d+)", line)
            if m and not self._found.is_set():
                self.host, self.port = m.group(1), int(m.group(2))
                self._found.set()

    def _health(self):
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            conn.request("GET", "/health")
            status = conn.getresponse().status
            conn.close()
            return status
        except OSError as e:
            return str(e)

    def _fail(self, what: str) -> None:
        self.stop()
        tail = "\n".join(self.lines[-20:])
        raise SystemExit(f"error: the server {what}.\ncommand: {' '.join(self.cmd)}\nits stderr:\n{tail}")

    def metrics(self) -> dict[str, float]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    values[name] = float(value)
                except ValueError:
                    pass
        return values

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        if self._log:
            self._log.close()


def stream_completion(host: str, port: int, body: bytes, start: threading.Barrier, out: dict) -> None:
    """One streaming request; fills out with times (time.monotonic) and counts."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=600)
        conn.connect()
        start.wait()
        out["sent"] = time.monotonic()
        conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            out["error"] = f"HTTP {resp.status}: {resp.read()[:300]!r}"
            return
        chunks = 0
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            now = time.monotonic()
            if data == b"[DONE]":
                out["done"] = now
                break
            chunk = json.loads(data)
            if "error" in chunk:
                out["error"] = json.dumps(chunk["error"])
                break
            chunks += 1
            choice = chunk["choices"][0]
            if choice.get("text") and "first" not in out:
                out["first"] = now
            if choice.get("finish_reason") is not None:
                out["last"] = now
                out["finish_reason"] = choice["finish_reason"]
                out["completion_tokens"] = chunk["usage"]["completion_tokens"]
                out["prompt_tokens"] = chunk["usage"]["prompt_tokens"]
        out["chunks"] = chunks
        conn.close()
    except Exception as e:  # reported with the level's results
        out["error"] = f"{type(e).__name__}: {e}"


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def run_level(server: Server, streams: int, args: argparse.Namespace) -> dict:
    body = json.dumps({
        "prompt": args.prompt,
        "max_tokens": args.tokens,
        "temperature": 0,
        "seed": 1,
        "ignore_eos": True,
        "stream": True,
    }).encode()
    before = server.metrics()
    barrier = threading.Barrier(streams)
    outs = [{} for _ in range(streams)]
    threads = [threading.Thread(target=stream_completion, args=(server.host, server.port, body, barrier, o))
               for o in outs]
    busy0, server0, own0 = cpu_busy_seconds(), process_cpu_seconds(server.proc.pid), own_cpu_seconds()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    busy1, server1, own1 = cpu_busy_seconds(), process_cpu_seconds(server.proc.pid), own_cpu_seconds()
    after = server.metrics()
    errors = [o["error"] for o in outs if "error" in o]
    if errors:
        raise SystemExit(f"error: {len(errors)} of {streams} streams failed, e.g. {errors[0]}")
    for o in outs:
        if "first" not in o or "last" not in o:
            raise SystemExit(f"error: a stream ended without text or without a final chunk: {o}")
    start = min(o["sent"] for o in outs)
    end = max(o["last"] for o in outs)
    wall = end - start
    ttft = [o["first"] - o["sent"] for o in outs]
    decode = [(o["completion_tokens"] - 1) / (o["last"] - o["first"]) for o in outs
              if o["completion_tokens"] > 1 and o["last"] > o["first"]]
    tokens = sum(o["completion_tokens"] for o in outs)
    steps = after.get("supercluster_engine_steps_total", 0) - before.get("supercluster_engine_steps_total", 0)
    generated = (after.get("supercluster_generated_tokens_total", 0)
                 - before.get("supercluster_generated_tokens_total", 0))
    server_cpu = server1 - server0
    other = max(0.0, (busy1 - busy0) - server_cpu - (own1 - own0))
    return {
        "streams": streams,
        "tokens_per_stream": [o["completion_tokens"] for o in outs],
        "finish_reasons": sorted({o["finish_reason"] for o in outs}),
        "prompt_tokens": outs[0]["prompt_tokens"],
        "chunks_per_stream_mean": statistics.mean(o["chunks"] for o in outs),
        "ttft_s": ttft,
        "ttft_p50_s": percentile(ttft, 0.5),
        "ttft_max_s": max(ttft),
        "decode_tokens_per_s": decode,
        "decode_tokens_per_s_mean": statistics.mean(decode) if decode else float("nan"),
        "decode_tokens_per_s_min": min(decode) if decode else float("nan"),
        "total_tokens": tokens,
        "wall_s": wall,
        "total_tokens_per_s": tokens / wall,
        "engine_steps": steps,
        "mean_tokens_per_step": generated / steps if steps else float("nan"),
        "server_cpu_s": server_cpu,
        "server_cpu_pct_of_wall": 100.0 * server_cpu / wall,
        "client_cpu_s": own1 - own0,
        "other_processes_cpu_pct": 100.0 * other / (wall * NCPU),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="run directory (or step_NNNNNNNN/) to serve")
    parser.add_argument("--binary", default="build/supercluster")
    parser.add_argument("--weights", help="passed on as `serve --weights W` (e.g. fp32, bf16, int8); "
                                          "not passed when not given")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128, help="max_tokens of each request (ignore_eos)")
    parser.add_argument("--streams", default="1,4,16", help="concurrency levels, comma-separated")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measurements of each level; the median one (by total tok/s) is the summary")
    parser.add_argument("--prompt", default="The meaning of life is")
    parser.add_argument("--ctx", type=int, help="passed on as `serve --ctx` (default: the model's context)")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--wait-idle", type=float, default=0.0,
                        help="before each measurement wait up to this many seconds for idle CPUs")
    parser.add_argument("--retries", type=int, default=0, help="re-measure a disturbed level up to N times")
    parser.add_argument("--server-log", help="write the server's stderr here")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    levels = [int(s) for s in args.streams.split(",") if s]
    if not levels or min(levels) < 1:
        raise SystemExit("error: --streams must list positive integers")
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"error: {args.binary} is not an executable (build it: scripts/build.sh supercluster)")
    cmd = [args.binary, "serve", "--checkpoint", args.checkpoint, "--host", "127.0.0.1", "--port", "0",
           "--slots", str(max(levels)), "--threads", str(args.threads)]
    if args.weights:
        cmd += ["--weights", args.weights]
    if args.ctx:
        cmd += ["--ctx", str(args.ctx)]
    print("starting:", " ".join(cmd), file=sys.stderr, flush=True)
    t0 = time.monotonic()
    server = Server(cmd, args.server_log, start_timeout=600)
    load_s = time.monotonic() - t0
    rows = []
    health = {}
    try:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        conn.request("GET", "/health")
        health = json.loads(conn.getresponse().read())
        conn.close()
        print(f"serving {health.get('checkpoint')} (step {health.get('step')}, {health.get('slots')} slots, "
              f"context {health.get('context')}) on {server.host}:{server.port}; ready after {load_s:.1f} s",
              file=sys.stderr, flush=True)
        if not args.no_warmup:
            # Every slot's KV cache and the batch buffers get touched once.
            print(f"warm-up: {max(levels)} streams x {args.tokens} tokens", file=sys.stderr, flush=True)
            run_level(server, max(levels), args)
        for r in range(args.rounds):  # rounds outermost: a slow minute hits every level alike
            for level in levels:
                row = None
                for attempt in range(args.retries + 1):
                    if args.wait_idle > 0:
                        wait_idle(args.wait_idle)
                    again = run_level(server, level, args)
                    if row is None or again["other_processes_cpu_pct"] < row["other_processes_cpu_pct"]:
                        row = again
                    if row["other_processes_cpu_pct"] <= 5:
                        break
                    print(f"  {level} streams: disturbed ({again['other_processes_cpu_pct']:.0f}% other CPU)",
                          file=sys.stderr, flush=True)
                row["round"] = r + 1
                rows.append(row)
                print(f"{level:>3} streams: TTFT p50 {row['ttft_p50_s'] * 1000:.0f} ms, "
                      f"decode {row['decode_tokens_per_s_mean']:.1f} tok/s/stream, "
                      f"total {row['total_tokens_per_s']:.1f} tok/s, "
                      f"other CPU {row['other_processes_cpu_pct']:.0f}%", file=sys.stderr, flush=True)
    finally:
        server.stop()

    # Each level's median round (by total tokens/s): the figure to quote.
    summary = []
    for level in levels:
        runs = sorted((r for r in rows if r["streams"] == level), key=lambda r: r["total_tokens_per_s"])
        summary.append(runs[(len(runs) - 1) // 2])
    base = summary[0]["total_tokens_per_s"] if levels[0] == 1 else None
    print()
    print(f"supercluster serve: {args.checkpoint}, --threads {args.threads}, --weights "
          f"{args.weights or '(not given)'}, {args.tokens} tokens per stream, prompt {rows[0]['prompt_tokens']} "
          f"tokens, temperature 0")
    print()

    def table(selected: list[dict]) -> None:
        print("| streams | TTFT p50 (ms) | TTFT max (ms) | decode tok/s per stream (mean / min) | "
              "total tok/s | vs 1 stream | wall (s) | tokens/step | other CPU |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in selected:
            flag = " (disturbed)" if r["other_processes_cpu_pct"] > 5 else ""
            ratio = f"{r['total_tokens_per_s'] / base:.2f}x" if base else "-"
            print(f"| {r['streams']} | {r['ttft_p50_s'] * 1000:.0f} | {r['ttft_max_s'] * 1000:.0f} | "
                  f"{r['decode_tokens_per_s_mean']:.1f} / {r['decode_tokens_per_s_min']:.1f} | "
                  f"{r['total_tokens_per_s']:.1f} | {ratio} | {r['wall_s']:.2f} | "
                  f"{r['mean_tokens_per_step']:.2f} | {r['other_processes_cpu_pct']:.0f}%{flag} |")

    rows.sort(key=lambda r: (r["streams"], r["round"]))
    if args.rounds > 1:
        print(f"every round ('vs 1 stream' against the median round of 1 stream):")
        print()
        table(rows)
        print()
        print(f"median round of {args.rounds} per level (by total tok/s):")
        print()
    table(summary)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "benchmark": "supercluster serve decode and concurrency",
                "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": cmd,
                "checkpoint": health,
                "weights": args.weights,
                "threads": args.threads,
                "tokens": args.tokens,
                "prompt": args.prompt,
                "load_s": load_s,
                "results": rows,
                "summary": summary,
            }, f, indent=2)
        print(f"\nresults: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
