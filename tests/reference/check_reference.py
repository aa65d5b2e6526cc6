"""Checks the reference model itself, so a wrong convention in model.py cannot
hide behind a fixture the C++ code then faithfully matches.

  1. formulas: gelu_tanh, silu, rmsnorm, cross-entropy against torch's own;
     RoPE against values worked out by hand;
  2. an independent, loop-based forward (per position, per head, RoPE angle by
     angle, causal softmax by explicit sums) must give the same logits;
  3. gradients: torch.autograd.gradcheck on very small configs, and central
     finite differences on sampled elements of every parameter;
  4. the untrained loss (docs/model.md init) is close to ln(V);
  5. torch's AdamW + clip_grad_norm_ equal the update written out by hand
     (the formula the C++ optimizer must implement, see README.md).

Run: /usr/bin/python3 tests/reference/check_reference.py  (make_fixtures.py runs it too)
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as ref  # noqa: E402

F64 = torch.float64


def tiny_config(**overrides) -> ref.Config:
    d = {
        "vocab_size": 11, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 1, "head_dim": 6, "intermediate_size": 10, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "tie_word_embeddings": True, "hidden_act": "gelu_pytorch_tanh",
        "attn_output_multiplier": 0.3, "attn_logit_softcapping": 2.0, "sandwich_norm": True,
        "embedding_multiplier_scale": 3.0, "output_multiplier_scale": 0.7,
    }
    d.update(overrides)
    return ref.Config.from_dict(d)


TINY_GROK = dict()
TINY_LLAMA = dict(tie_word_embeddings=False, hidden_act="silu", attn_logit_softcapping=None,
                  sandwich_norm=False, embedding_multiplier_scale=1.0, output_multiplier_scale=1.0,
                  num_key_value_heads=2, head_dim=None, attn_output_multiplier=None)


def spread_params(cfg: ref.Config, seed: int, scale: float = 0.5):
    """Parameters large enough that every non-linearity (softcap tanh, GELU,
    softmax) is away from its linear regime, and norm weights that are not 1."""
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in ref.parameter_shapes(cfg):
        noise = torch.randn(shape, generator=gen, dtype=F64)
        value = 1.0 + 0.3 * noise if len(shape) == 1 else scale * noise
        params[name] = value.requires_grad_(True)
    return params


def batch(cfg: ref.Config, B: int, T: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, cfg.vocab_size, (B, T), generator=gen)
    targets = torch.randint(0, cfg.vocab_size, (B, T), generator=gen)
    targets[0, 1] = ref.IGNORE_INDEX
    return tokens, targets


# ---------------------------------------------------------------- 1. formulas

def check_formulas():
    x = torch.linspace(-6, 6, 101, dtype=F64)
    assert torch.allclose(ref.gelu_tanh(x), torch.nn.functional.gelu(x, approximate="tanh"), rtol=0, atol=1e-15)
    assert torch.allclose(ref.silu(x), torch.nn.functional.silu(x), rtol=0, atol=1e-15)
    v = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=F64)
    w = torch.tensor([0.5, 1.0, 2.0, -1.0], dtype=F64)
    rms = math.sqrt((1 + 4 + 9 + 0.25) / 4 + 1e-5)
    assert torch.allclose(ref.rmsnorm(v, w, 1e-5), v / rms * w, rtol=0, atol=1e-15)
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(1), dtype=F64)
    targets = torch.tensor([[1, -1, 4], [0, 2, -1]])
    counted = [(b, t) for b in range(2) for t in range(3) if targets[b, t] >= 0]
    by_hand = sum(torch.logsumexp(logits[b, t], 0) - logits[b, t, targets[b, t]] for b, t in counted) / len(counted)
    assert abs(float(ref.cross_entropy_loss(logits, targets) - by_hand)) < 1e-14

    # RoPE by hand: D = 4, theta = 100 -> theta_0 = 1, theta_1 = 100^(-1/2) = 0.1.
    cfg = tiny_config(head_dim=4, rope_theta=100.0)
    cos, sin = ref.rope_tables(cfg, 3, F64)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    out = ref.apply_rope(x, cos, sin)[0, :, 0]
    for p in range(3):
        a0, a1 = p * 1.0, p * 0.1
        expected = [1 * math.cos(a0) - 3 * math.sin(a0), 2 * math.cos(a1) - 4 * math.sin(a1),
                    3 * math.cos(a0) + 1 * math.sin(a0), 4 * math.cos(a1) + 2 * math.sin(a1)]
        assert torch.allclose(out[p], torch.tensor(expected, dtype=F64), rtol=0, atol=1e-14), (p, out[p], expected)
    print("check_reference: formulas (gelu_tanh, silu, rmsnorm, cross-entropy, RoPE by hand): ok")


# ---------------------------------------------------------------- 2. naive forward

def naive_logits(cfg: ref.Config, params, tokens) -> torch.Tensor:
    """docs/model.md again, one position and one head at a time, with no
    vectorised RoPE, no masks and no repeat_interleave: a second reading of
    the page that shares nothing with model.forward but the parameters."""
    P = {k: v.detach().to(F64) for k, v in params.items()}
    B, T = tokens.shape
    H, D, Hq, Hkv = cfg.hidden_size, cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    eps, cap = cfg.rms_norm_eps, cfg.softcap

    def norm(vec, w):
        ms = sum(float(e) ** 2 for e in vec) / len(vec)
        return vec / math.sqrt(ms + eps) * w

    def rope(vec, pos):
        out = vec.clone()
        for i in range(D // 2):
            angle = pos * cfg.rope_theta ** (-2.0 * i / D)
            c, s = math.cos(angle), math.sin(angle)
            out[i] = vec[i] * c - vec[i + D // 2] * s
            out[i + D // 2] = vec[i + D // 2] * c + vec[i] * s
        return out

    act = (lambda z: torch.nn.functional.gelu(z, approximate="tanh")) if cfg.hidden_act == "gelu_pytorch_tanh" \
        else torch.nn.functional.silu
    w_out = P["model.embed_tokens.weight"] if cfg.tie_word_embeddings else P["lm_head.weight"]
    logits = torch.zeros(B, T, cfg.vocab_size, dtype=F64)
    for b in range(B):
        h = [P["model.embed_tokens.weight"][int(tokens[b, t])] * cfg.embedding_multiplier_scale for t in range(T)]
        for l in range(cfg.num_hidden_layers):
            p = f"model.layers.{l}."
            Wq, Wk = P[p + "self_attn.q_proj.weight"], P[p + "self_attn.k_proj.weight"]
            Wv, Wo = P[p + "self_attn.v_proj.weight"], P[p + "self_attn.o_proj.weight"]
            a = [norm(h[t], P[p + "input_layernorm.weight"]) for t in range(T)]
            q = [[rope(Wq[n * D:(n + 1) * D] @ a[t], t) for n in range(Hq)] for t in range(T)]
            k = [[rope(Wk[m * D:(m + 1) * D] @ a[t], t) for m in range(Hkv)] for t in range(T)]
            v = [[Wv[m * D:(m + 1) * D] @ a[t] for m in range(Hkv)] for t in range(T)]
            for i in range(T):
                heads = []
                for n in range(Hq):
                    m = n // (Hq // Hkv)
                    scores = []
                    for j in range(i + 1):  # causal: keys 0..i only
                        s = float(q[i][n] @ k[j][m]) * cfg.attn_output_multiplier
                        if cap > 0:
                            s = cap * math.tanh(s / cap)
                        scores.append(s)
                    top = max(scores)
                    weights = [math.exp(s - top) for s in scores]
                    total = sum(weights)
                    heads.append(sum(weights[j] / total * v[j][m] for j in range(i + 1)))
                o = Wo @ torch.cat(heads)
                if cfg.sandwich_norm:
                    o = norm(o, P[p + "post_attention_layernorm.weight"])
                h[i] = h[i] + o
            for i in range(T):
                ffn_in = "pre_feedforward_layernorm" if cfg.sandwich_norm else "post_attention_layernorm"
                f = norm(h[i], P[p + ffn_in + ".weight"])
                g = act(P[p + "mlp.gate_proj.weight"] @ f) * (P[p + "mlp.up_proj.weight"] @ f)
                y = P[p + "mlp.down_proj.weight"] @ g
                if cfg.sandwich_norm:
                    y = norm(y, P[p + "post_feedforward_layernorm.weight"])
                h[i] = h[i] + y
        for t in range(T):
            logits[b, t] = (w_out @ norm(h[t], P["model.norm.weight"])) * cfg.output_multiplier_scale
    return logits


def check_against_naive(cfg, params, tokens, label):
    with torch.no_grad():
        fast = ref.forward(cfg, {k: v.detach().to(F64) for k, v in params.items()}, tokens)
    slow = naive_logits(cfg, params, tokens)
    worst = float((fast - slow).abs().max())
    assert worst < 1e-11, f"{label}: model.forward and the loop-based forward differ by {worst}"
    print(f"check_reference: {label}: loop-based forward matches, max |diff| {worst:.1e}")


# ---------------------------------------------------------------- 3. gradients

def check_gradcheck(cfg, label):
    params = spread_params(cfg, seed=3)
    names = list(params)
    tokens, targets = batch(cfg, B=2, T=5, seed=4)

    def loss_of(*values):
        return ref.cross_entropy_loss(ref.forward(cfg, dict(zip(names, values)), tokens), targets)

    inputs = tuple(params[n] for n in names)
    assert torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
    count = sum(p.numel() for p in inputs)
    print(f"check_reference: {label}: torch.autograd.gradcheck over all {count} parameters: ok")


def check_finite_differences(cfg, params, tokens, targets, label, per_tensor=3, seed=5):
    """Central differences on `per_tensor` sampled elements of every parameter."""
    P = {k: v.detach().to(F64).clone().requires_grad_(True) for k, v in params.items()}
    loss = ref.cross_entropy_loss(ref.forward(cfg, P, tokens), targets)
    loss.backward()
    gen = torch.Generator().manual_seed(seed)
    h = 1e-6
    worst = 0.0
    checked = 0
    with torch.no_grad():
        for name, p in P.items():
            flat = p.view(-1)
            for idx in torch.randint(0, flat.numel(), (per_tensor,), generator=gen).tolist():
                saved = float(flat[idx])
                flat[idx] = saved + h
                up = float(ref.cross_entropy_loss(ref.forward(cfg, P, tokens), targets))
                flat[idx] = saved - h
                down = float(ref.cross_entropy_loss(ref.forward(cfg, P, tokens), targets))
                flat[idx] = saved
                numeric = (up - down) / (2 * h)
                analytic = float(p.grad.view(-1)[idx])
                err = abs(numeric - analytic) / (1e-6 + abs(analytic))
                assert abs(numeric - analytic) < 1e-7 + 1e-5 * abs(analytic), \
                    f"{label}: {name}[{idx}]: autograd {analytic} vs finite difference {numeric}"
                worst = max(worst, err)
                checked += 1
    print(f"check_reference: {label}: finite differences on {checked} elements of {len(P)} tensors, "
          f"worst relative error {worst:.1e}")


# ---------------------------------------------------------------- 4. untrained loss

def check_untrained_loss(cfg, label):
    params = ref.init_params(cfg, seed=11)
    tokens, targets = batch(cfg, B=4, T=16, seed=12)
    with torch.no_grad():
        loss = float(ref.cross_entropy_loss(ref.forward(cfg, params, tokens), targets))
    ln_v = math.log(cfg.vocab_size)
    assert abs(loss - ln_v) < 0.02 * ln_v, f"{label}: untrained loss {loss} is far from ln(V) = {ln_v}"
    print(f"check_reference: {label}: untrained loss {loss:.4f} vs ln(V) {ln_v:.4f}")


# ---------------------------------------------------------------- 5. optimizer

def clip_and_adamw_by_hand(params, grads, state, step, lr, beta1, beta2, eps, weight_decay, max_norm):
    """The update README.md documents (torch 1.13 semantics), in place."""
    total = math.sqrt(sum(float(g.pow(2).sum()) for g in grads.values()))
    coef = min(1.0, max_norm / (total + 1e-6))
    for name, p in params.items():
        g = grads[name] * coef
        m, v = state.setdefault(name, (torch.zeros_like(p), torch.zeros_like(p)))
        wd = weight_decay if p.dim() >= 2 else 0.0
        p.mul_(1 - lr * wd)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        state[name] = (m, v)
        bias1, bias2 = 1 - beta1 ** step, 1 - beta2 ** step
        p.sub_(lr / bias1 * m / (v.sqrt() / math.sqrt(bias2) + eps))


def check_adamw(cfg, label):
    hyper = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, max_norm=1.0)
    start = spread_params(cfg, seed=21)
    batches = [batch(cfg, 2, 5, seed=22), batch(cfg, 2, 5, seed=23)]

    torch_params = {k: v.detach().clone().requires_grad_(True) for k, v in start.items()}
    opt = ref.make_adamw(torch_params, hyper["lr"], (hyper["beta1"], hyper["beta2"]), hyper["eps"],
                         hyper["weight_decay"])
    norms = []
    for tokens, targets in batches:
        opt.zero_grad()
        ref.cross_entropy_loss(ref.forward(cfg, torch_params, tokens), targets).backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(torch_params.values()), hyper["max_norm"])))
        opt.step()

    hand = {k: v.detach().clone() for k, v in start.items()}
    state = {}
    for step, (tokens, targets) in enumerate(batches, start=1):
        P = {k: v.clone().requires_grad_(True) for k, v in hand.items()}
        ref.cross_entropy_loss(ref.forward(cfg, P, tokens), targets).backward()
        with torch.no_grad():
            clip_and_adamw_by_hand(hand, {k: P[k].grad for k in P}, state, step, hyper["lr"], hyper["beta1"],
                                   hyper["beta2"], hyper["eps"], hyper["weight_decay"], hyper["max_norm"])
    worst = max(float((torch_params[k].detach() - hand[k]).abs().max()) for k in hand)
    assert worst < 1e-14, f"{label}: torch AdamW and the hand-written update differ by {worst}"
    assert max(norms) > hyper["max_norm"], f"{label}: clipping was never active (grad norms {norms})"
    print(f"check_reference: {label}: clip_grad_norm_ + AdamW equal the hand-written update "
          f"(max |diff| {worst:.1e}; grad norms {norms[0]:.3f}, {norms[1]:.3f})")


def run_all():
    torch.set_num_threads(1)
    check_formulas()
    for label, overrides in (("tiny grok-style", TINY_GROK), ("tiny llama-style", TINY_LLAMA)):
        cfg = tiny_config(**overrides)
        params = spread_params(cfg, seed=1)
        tokens, _ = batch(cfg, B=2, T=6, seed=2)
        check_against_naive(cfg, params, tokens, label)
        check_gradcheck(cfg, label)
        check_untrained_loss(cfg, label)
        check_adamw(cfg, label)


if __name__ == "__main__":
    run_all()
    print("check_reference: all checks passed")
