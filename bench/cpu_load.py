"""How busy this machine's CPUs are, for the Python benchmarks that share
its cores with other jobs (serve_bench.py, llama_cpp_peer.py)."""
from __future__ import annotations

import os
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def cpu_busy_seconds() -> float:
    """CPU-seconds all CPUs have been busy since boot (/proc/stat, idle and iowait excluded)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / HZ


def wait_idle(max_wait: float, below_pct: float = 10.0) -> float:
    """Waits (at most max_wait s) until the CPUs were under below_pct busy for 2 s; returns that share."""
    start = time.monotonic()
    deadline = start + max_wait
    waited = False
    while True:
        b0, t0 = cpu_busy_seconds(), time.monotonic()
        time.sleep(2.0)
        busy = 100.0 * (cpu_busy_seconds() - b0) / ((time.monotonic() - t0) * NCPU)
        if busy < below_pct or time.monotonic() >= deadline:
            if waited:
                print(f"  waited {time.monotonic() - start:.0f} s for idle CPUs; now {busy:.0f}% busy",
                      file=sys.stderr, flush=True)
            return busy
        if not waited:
            print(f"  waiting up to {max_wait:.0f} s for idle CPUs ({busy:.0f}% busy)", file=sys.stderr, flush=True)
        waited = True
