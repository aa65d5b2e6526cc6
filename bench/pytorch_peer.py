#!/usr/bin/python3
"""The PyTorch peer of bench/train_step_bench: the same model (docs/model.md,
via tests/reference/model.py), the same batch, the same training step
(zero_grad, forward, backward of the mean loss, clip_grad_norm_ to 1.0, AdamW
with no decay on norm weights), timed the same way, on the same machine.

Run it with Debian's /usr/bin/python3 (python3-torch); bench/run_train_bench.sh
sets the environment PyTorch runs best in (OPENBLAS_CORETYPE for the CPU,
jemalloc, OMP_WAIT_POLICY=PASSIVE) and runs both sides.

PyTorch gets its fair best:
  * two forward implementations of the same math, both checked to give the
    same loss on the same weights:
      reference  tests/reference/model.py as written (einsum attention, the
                 mask and RoPE tables rebuilt each call, repeat_interleave),
      tuned      the same model written as a PyTorch user would for speed:
                 F.linear, RoPE tables and an additive causal mask built once,
                 batched matmul attention in [B, H, T, D], F.gelu(tanh),
                 rsqrt RMSNorm, no repeat_interleave when Hq == Hkv;
  * torch.optim.AdamW with foreach=True and foreach=False (1.13 has no fused
    CPU AdamW);
  * optionally torch.jit.trace of the tuned model with the CPU fuser on
    (--jit; tried, see bench/README.md);
  * --variant auto (the default) times two steps of each forward (after one
    untimed) and a few optimizer steps of each AdamW and keeps the fastest,
    before the timed run.
Prints one JSON object with --json.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import model as ref  # noqa: E402  tests/reference/model.py

# Keys supercluster's to_json() writes that the reference does not read; they
# are no-ops for a dense model and are checked to be so.
DENSE_ONLY_KEYS = {"moe_layer_frequency", "router_renormalize"}


def load_config(path):
    with open(path) as f:
        d = json.load(f)
    if int(d.get("num_experts", 0) or 0) <= 1:
        for key in DENSE_ONLY_KEYS:
            d.pop(key, None)
    return ref.Config.from_dict(d)


# ------------------------------------------------------------ tuned forward

class Tuned:
    """docs/model.md's forward, same math as ref.forward, written for speed."""

    def __init__(self, cfg, params, T):
        self.cfg, self.p, self.T = cfg, params, T
        dtype = params["model.embed_tokens.weight"].dtype
        cos, sin = ref.rope_tables(cfg, T, dtype)          # [T, D/2]
        # [1, 1, T, D]: cos duplicated over both halves, sin signed for rotate-half.
        self.cos = torch.cat([cos, cos], dim=-1)[None, None]
        self.sin = torch.cat([-sin, sin], dim=-1)[None, None]
        self.mask = torch.full((T, T), float("-inf"), dtype=dtype).triu(1)

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.rms_norm_eps) * w

    def rope(self, x):  # x [B, H, T, D]
        half = x.shape[-1] // 2
        rot = torch.cat([x[..., half:], x[..., :half]], dim=-1)
        return x * self.cos + rot * self.sin

    def act(self, x):
        if self.cfg.hidden_act == "gelu_pytorch_tanh":
            return F.gelu(x, approximate="tanh")
        return F.silu(x)

    def __call__(self, tokens):
        cfg, p = self.cfg, self.p
        B, T = tokens.shape
        Hq, Hkv, D = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        E = p["model.embed_tokens.weight"]
        h = F.embedding(tokens, E)
        if cfg.embedding_multiplier_scale != 1.0:
            h = h * cfg.embedding_multiplier_scale
        for l in range(cfg.num_hidden_layers):
            pre = f"model.layers.{l}."
            a = self.rmsnorm(h, p[pre + "input_layernorm.weight"])
            q = F.linear(a, p[pre + "self_attn.q_proj.weight"]).view(B, T, Hq, D).transpose(1, 2)
            k = F.linear(a, p[pre + "self_attn.k_proj.weight"]).view(B, T, Hkv, D).transpose(1, 2)
            v = F.linear(a, p[pre + "self_attn.v_proj.weight"]).view(B, T, Hkv, D).transpose(1, 2)
            q, k = self.rope(q), self.rope(k)
            if Hq != Hkv:
                k = k.repeat_interleave(Hq // Hkv, dim=1)
                v = v.repeat_interleave(Hq // Hkv, dim=1)
            s = torch.matmul(q, k.transpose(-1, -2)) * cfg.attn_output_multiplier
            if cfg.softcap > 0:
                s = cfg.softcap * torch.tanh(s / cfg.softcap)
            probs = torch.softmax(s + self.mask, dim=-1)
            o = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, Hq * D)
            o = F.linear(o, p[pre + "self_attn.o_proj.weight"])
            if cfg.sandwich_norm:
                o = self.rmsnorm(o, p[pre + "post_attention_layernorm.weight"])
            h = h + o
            ffn_in = "pre_feedforward_layernorm" if cfg.sandwich_norm else "post_attention_layernorm"
            f = self.rmsnorm(h, p[pre + ffn_in + ".weight"])
            g = self.act(F.linear(f, p[pre + "mlp.gate_proj.weight"])) * F.linear(f, p[pre + "mlp.up_proj.weight"])
            y = F.linear(g, p[pre + "mlp.down_proj.weight"])
            if cfg.sandwich_norm:
                y = self.rmsnorm(y, p[pre + "post_feedforward_layernorm.weight"])
            h = h + y
        w_out = E if cfg.tie_word_embeddings else p["lm_head.weight"]
        logits = F.linear(self.rmsnorm(h, p["model.norm.weight"]), w_out)
        if cfg.output_multiplier_scale != 1.0:
            logits = logits * cfg.output_multiplier_scale
        return logits


class LossModule(torch.nn.Module):
    """Tuned forward + loss as a Module, for torch.jit.trace."""

    def __init__(self, tuned, params):
        super().__init__()
        self.tuned = tuned
        self.plist = torch.nn.ParameterList([torch.nn.Parameter(t, requires_grad=True) for t in params.values()])

    def forward(self, tokens, targets):
        return ref.cross_entropy_loss(self.tuned(tokens), targets)


# ------------------------------------------------------------ measurement

def matmul_peak_gflops(n=2048, repeats=5):
    a = torch.full((n, n), 0.5)
    b = torch.full((n, n), 0.25)
    c = torch.empty(n, n)
    torch.mm(a, b, out=c)
    best = 1e30
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def sample_cpu():
    """(all CPUs busy s, all CPUs total s, this process s) since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    t = os.times()
    return (sum(v) - v[3] - v[4]) / tick, sum(v) / tick, t.user + t.system


def others_cpu_pct(a, b):
    """Percent of the machine's CPU time other processes used between samples a and b."""
    total = b[1] - a[1]
    return max(0.0, 100.0 * ((b[0] - a[0]) - (b[2] - a[2])) / total) if total > 0 else 0.0


def make_optimizer(params, foreach, lr):
    decay = [t for t in params.values() if t.dim() >= 2]
    no_decay = [t for t in params.values() if t.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8, foreach=foreach)


def train_step(loss_fn, params, opt, tokens, targets, grad_clip):
    """One step; returns (loss, forward_s, backward_s, optimizer_s)."""
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(tokens, targets)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    norm = torch.nn.utils.clip_grad_norm_(list(params.values()), grad_clip)
    opt.step()
    t3 = time.perf_counter()
    lv = loss.item()
    if not math.isfinite(lv) or not math.isfinite(float(norm)):
        raise SystemExit(f"pytorch_peer: non-finite loss {lv} or grad norm {float(norm)}")
    return lv, t1 - t0, t2 - t1, t3 - t2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config-json", required=True, help="config.json (train_step_bench --print-config)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--flops-per-token", type=int, default=0,
                    help="model_flops_per_token from train_step_bench (the one FLOP definition)")
    ap.add_argument("--variant", choices=["auto", "reference", "tuned", "jit"], default="auto")
    ap.add_argument("--foreach", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--mkldnn", choices=["on", "off"], default="on", help="torch.backends.mkldnn.enabled")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.backends.mkldnn.enabled = args.mkldnn == "on"
    torch.manual_seed(args.seed)
    notes = []

    cfg = load_config(args.config_json)
    B, T = args.batch_size, args.seq_len
    t_init = time.perf_counter()
    params = ref.init_params(cfg, seed=args.seed, dtype=torch.float32)
    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    init_s = time.perf_counter() - t_init
    gen = torch.Generator().manual_seed(args.seed)
    stream = torch.randint(0, cfg.vocab_size, (B, T + 1), generator=gen, dtype=torch.int64)
    tokens, targets = stream[:, :-1].contiguous(), stream[:, 1:].contiguous()

    peak = matmul_peak_gflops()

    moe = int(getattr(cfg, "num_experts", 0) or 0) > 1
    if moe:
        # The tuned forward is dense; MoE runs the reference model (router,
        # top-k, per-expert GEMMs on gathered tokens, aux and z losses), the
        # same math as the C++ side.
        if args.variant in ("tuned", "jit"):
            raise SystemExit("pytorch_peer: --variant tuned/jit is dense only; MoE uses 'reference'")
        forwards = {"reference": lambda x, y: ref.loss(cfg, params, x, y)}
        args.variant = "reference"
        notes.append("MoE: reference forward with its router losses")
    else:
        tuned = Tuned(cfg, params, T)
        forwards = {
            "reference": lambda x, y: ref.cross_entropy_loss(ref.forward(cfg, params, x), y),
            "tuned": lambda x, y: ref.cross_entropy_loss(tuned(x), y),
        }
        # Same math: the losses of both forwards on the same weights agree.
        with torch.no_grad():
            l_ref = forwards["reference"](tokens, targets).item()
            l_tuned = forwards["tuned"](tokens, targets).item()
        if abs(l_ref - l_tuned) > 1e-4 * max(1.0, abs(l_ref)):
            raise SystemExit(f"pytorch_peer: tuned forward loss {l_tuned} != reference {l_ref}")
        notes.append(f"tuned forward loss {l_tuned:.6f} == reference {l_ref:.6f}")

    if args.variant == "jit":
        torch._C._jit_override_can_fuse_on_cpu(True)
        module = LossModule(tuned, params)
        # Rebind the parameters to the module's, so the optimizer sees them.
        for (name, _), prm in zip(list(params.items()), module.plist):
            params[name] = prm
        tuned.p = params
        t0 = time.perf_counter()
        traced = torch.jit.trace(module, (tokens, targets), check_trace=False)
        try:  # the profiling executor fuses on the 2nd/3rd call; the NNC CPU fuser needs LLVM
            for _ in range(3):
                traced(tokens, targets).backward()
            notes.append("jit.trace with the CPU fuser")
        except RuntimeError as e:
            torch._C._jit_override_can_fuse_on_cpu(False)
            traced = torch.jit.trace(module, (tokens, targets), check_trace=False)
            notes.append(f"jit CPU fuser unavailable ({str(e).strip().splitlines()[-1]}); jit.trace without it")
        for v in params.values():
            v.grad = None
        notes.append(f"jit set-up took {time.perf_counter() - t0:.1f} s")
        forwards["jit"] = lambda x, y: traced(x, y)

    # Optimizer: foreach on/off, picked by timing optimizer steps alone.
    if args.foreach == "auto":
        loss = forwards["tuned" if "tuned" in forwards else "reference"](tokens, targets)
        loss.backward()
        best = None
        for fe in (True, False):
            opt = make_optimizer(params, fe, args.lr)
            snapshot = {k: v.detach().clone() for k, v in params.items()}
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                torch.nn.utils.clip_grad_norm_(list(params.values()), args.grad_clip)
                opt.step()
                times.append(time.perf_counter() - t0)
            with torch.no_grad():
                for k, v in params.items():
                    v.copy_(snapshot[k])
            t = min(times[1:])
            notes.append(f"clip+AdamW foreach={fe}: {t:.3f} s")
            if best is None or t < best[1]:
                best = (fe, t)
            del opt, snapshot
        foreach = best[0]
        for v in params.values():
            v.grad = None
    else:
        foreach = args.foreach == "on"

    # Forward implementation: one untimed and two timed steps each, keep the faster.
    if args.variant == "auto":
        best = None
        for name in ("reference", "tuned"):
            snapshot = {k: v.detach().clone() for k, v in params.items()}
            opt = make_optimizer(params, foreach, args.lr)
            train_step(forwards[name], params, opt, tokens, targets, args.grad_clip)
            # Best of two timed steps: one step alone is too noisy to choose by.
            step_time = min(sum(train_step(forwards[name], params, opt, tokens, targets, args.grad_clip)[1:])
                            for _ in range(2))
            with torch.no_grad():
                for k, v in params.items():
                    v.copy_(snapshot[k])
                    v.grad = None
            notes.append(f"forward '{name}': best step {step_time:.3f} s")
            if best is None or step_time < best[1]:
                best = (name, step_time)
            del opt, snapshot
        variant = best[0]
    else:
        variant = args.variant

    opt = make_optimizer(params, foreach, args.lr)
    loss_fn = forwards[variant]
    steps, fw, bw, op, losses = [], [], [], [], []
    cpu_begin = sample_cpu()
    for s in range(args.warmup + args.steps):
        if s == args.warmup:
            cpu_begin = sample_cpu()
        t0 = time.perf_counter()
        lv, f, b, o = train_step(loss_fn, params, opt, tokens, targets, args.grad_clip)
        dt = time.perf_counter() - t0
        losses.append(lv)
        if s < args.warmup:
            continue
        steps.append(dt)
        fw.append(f)
        bw.append(b)
        op.append(o)

    others_pct = others_cpu_pct(cpu_begin, sample_cpu())
    # Peak again after the steps; the better of the two (as train_step_bench).
    peak = max(peak, matmul_peak_gflops())
    mean = lambda xs: sum(xs) / len(xs)
    step_s = mean(steps)
    tokens_per_step = B * T
    tokens_per_s = tokens_per_step / step_s
    fpt = args.flops_per_token
    model_tflops = tokens_per_s * fpt / 1e12 if fpt else 0.0
    out = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "variant": variant,
        "adamw_foreach": foreach,
        "mkldnn": torch.backends.mkldnn.enabled,
        "batch_size": B,
        "seq_len": T,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "warmup": args.warmup,
        "tokens_per_step": tokens_per_step,
        "flops_per_token": fpt,
        "step_time_s": step_s,
        "step_time_median_s": sorted(steps)[len(steps) // 2] if len(steps) % 2 else
        0.5 * (sorted(steps)[len(steps) // 2 - 1] + sorted(steps)[len(steps) // 2]),
        "step_time_min_s": min(steps),
        "tokens_per_s": tokens_per_s,
        "model_tflops": model_tflops,
        "peak_gflops": peak,
        "pct_of_peak": 100.0 * model_tflops * 1e3 / peak if fpt else 0.0,
        "forward_s": mean(fw),
        "backward_s": mean(bw),
        "optimizer_s": mean(op),
        "other_processes_cpu_pct": others_pct,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "init_s": init_s,
        "env": {k: os.environ.get(k, "") for k in ("OPENBLAS_CORETYPE", "LD_PRELOAD", "OMP_WAIT_POLICY",
                                                   "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_CONF")},
        "peak_method": "torch.mm 2048^3, best of 5, before and after the steps",
        "notes": notes,
    }
    if args.json:
        print(json.dumps(out))
        return
    print(f"pytorch_peer: torch {torch.__version__}, forward '{variant}', AdamW foreach={foreach}, "
          f"{torch.get_num_threads()} threads, batch {B} x {T}")
    for n in notes:
        print(f"  {n}")
    print(f"  fp32 torch.mm peak (2048^3): {peak:.1f} GFLOP/s")
    print(f"  step time  {step_s:.3f} s mean, {min(steps):.3f} s min "
          f"(forward {mean(fw):.3f}, backward {mean(bw):.3f}, clip+AdamW {mean(op):.3f})")
    print(f"  tokens/s   {tokens_per_s:.1f}")
    if fpt:
        print(f"  model      {model_tflops:.3f} TFLOP/s = {out['pct_of_peak']:.1f}% of the measured peak")
    print(f"  loss       {losses[0]:.4f} -> {losses[-1]:.4f}")
    print(f"  other processes used {others_pct:.1f}% of the CPUs during the timed steps"
          + (" (a shared machine: figures are low)" if others_pct > 5 else ""))


if __name__ == "__main__":
    main()
