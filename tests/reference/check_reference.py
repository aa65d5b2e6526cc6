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
     (the formula the C++ optimizer must implement, see README.md);
  6. Mixture-of-Experts: the loop-based forward of 2. also routes token by
     token (softmax, top-k by scanning, capacity counters, aux and z losses
     by sums) and must match model.moe_ffn; ties go to the lower expert;
     aux = 1 when routing is uniform; capacity drops exactly the assignments
     of a hand-made case. The MoE tiny configs go through 2.-5. as well, with
     the total loss (cross-entropy + aux + z).

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
# MoE variants: Grok-1 routing (every layer MoE, weights not renormalized) and
# Mixtral routing (renormalized; layer 0 MoE, layer 1 dense) with a capacity
# that drops assignments. Loss coefficients large enough that the router's
# gradient owes a visible part to aux and z.
MOE_COMMON = dict(intermediate_size=6, num_experts=4, num_experts_per_tok=2,
                  router_aux_loss_coef=0.5, router_z_loss_coef=0.1)
TINY_GROK_MOE = dict(TINY_GROK, **MOE_COMMON, router_renormalize=False, moe_layer_frequency=1)
TINY_MIXTRAL_MOE = dict(TINY_LLAMA, **MOE_COMMON, router_renormalize=True, moe_layer_frequency=2,
                        capacity_factor=0.75)
CONFIGS = (("tiny grok-style", TINY_GROK), ("tiny llama-style", TINY_LLAMA),
           ("tiny grok-style MoE", TINY_GROK_MOE), ("tiny mixtral-style MoE, capacity 0.75", TINY_MIXTRAL_MOE))


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

def naive_moe(cfg: ref.Config, P, l: int, fs):
    """docs/model.md's MoE FFN again, token by token: fs is the list of the N
    FFN inputs of the micro-batch in token order. Softmax by hand, top-k by
    scanning the experts (a strict > keeps the lower index on a tie), the
    capacity by counters in token order, expert FFNs as matrix-vector
    products, the losses by plain sums. Returns the N outputs and the layer's
    statistics."""
    E, k, N = cfg.num_experts, cfg.num_experts_per_tok, len(fs)
    m = f"model.layers.{l}.block_sparse_moe."
    Wr = P[m + "gate.weight"]
    act = (lambda z: torch.nn.functional.gelu(z, approximate="tanh")) if cfg.hidden_act == "gelu_pytorch_tanh" \
        else torch.nn.functional.silu
    capacity = math.ceil(cfg.capacity_factor * N * k / E) if cfg.capacity_factor > 0 else None
    used, counts, prob_sum = [0] * E, [0] * E, [0.0] * E
    z_sum, dropped, ys, chosen_all = 0.0, 0, [], []
    for x in fs:
        r = [float(Wr[e] @ x) for e in range(E)]
        top = max(r)
        total = sum(math.exp(v - top) for v in r)
        p = [math.exp(v - top) / total for v in r]
        z_sum += (top + math.log(total)) ** 2
        chosen = []
        for _ in range(k):
            best = None
            for e in range(E):
                if e not in chosen and (best is None or p[e] > p[best]):
                    best = e
            chosen.append(best)
        weights = [p[e] for e in chosen]
        if cfg.router_renormalize:
            weights = [w / sum(weights) for w in weights]
        y = torch.zeros(cfg.hidden_size, dtype=F64)
        for j, e in enumerate(chosen):
            counts[e] += 1
            if capacity is not None and used[e] >= capacity:
                dropped += 1
                continue
            used[e] += 1
            ex = m + f"experts.{e}."
            g = act(P[ex + "w1.weight"] @ x) * (P[ex + "w3.weight"] @ x)
            y = y + weights[j] * (P[ex + "w2.weight"] @ g)
        ys.append(y)
        chosen_all.append(chosen)
        for e in range(E):
            prob_sum[e] += p[e]
    aux = E * sum(counts[e] / (N * k) * (prob_sum[e] / N) for e in range(E))
    stats = {"aux": aux, "z": z_sum / N, "counts": counts, "dropped": dropped, "experts": chosen_all}
    return ys, stats


def naive_forward(cfg: ref.Config, params, tokens):
    """docs/model.md again, one position and one head at a time, with no
    vectorised RoPE, no masks and no repeat_interleave: a second reading of
    the page that shares nothing with model.forward but the parameters.
    Returns the logits and, per MoE layer, naive_moe's statistics."""
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
    moe_stats = []
    # h[b][t]: the residual stream. Attention runs per sequence; the FFN sees
    # the whole micro-batch (an MoE layer's capacity and losses do).
    h = [[P["model.embed_tokens.weight"][int(tokens[b, t])] * cfg.embedding_multiplier_scale for t in range(T)]
         for b in range(B)]
    for l in range(cfg.num_hidden_layers):
        p = f"model.layers.{l}."
        Wq, Wk = P[p + "self_attn.q_proj.weight"], P[p + "self_attn.k_proj.weight"]
        Wv, Wo = P[p + "self_attn.v_proj.weight"], P[p + "self_attn.o_proj.weight"]
        for b in range(B):
            a = [norm(h[b][t], P[p + "input_layernorm.weight"]) for t in range(T)]
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
                h[b][i] = h[b][i] + o
        ffn_in = "pre_feedforward_layernorm" if cfg.sandwich_norm else "post_attention_layernorm"
        fs = [norm(h[b][i], P[p + ffn_in + ".weight"]) for b in range(B) for i in range(T)]  # token order b*T+i
        if cfg.num_experts > 1 and l % cfg.moe_layer_frequency == 0:
            ys, stats = naive_moe(cfg, P, l, fs)
            moe_stats.append(stats)
        else:
            ys = [P[p + "mlp.down_proj.weight"] @ (act(P[p + "mlp.gate_proj.weight"] @ f) *
                                                   (P[p + "mlp.up_proj.weight"] @ f)) for f in fs]
        for b in range(B):
            for i in range(T):
                y = ys[b * T + i]
                if cfg.sandwich_norm:
                    y = norm(y, P[p + "post_feedforward_layernorm.weight"])
                h[b][i] = h[b][i] + y
    for b in range(B):
        for t in range(T):
            logits[b, t] = (w_out @ norm(h[b][t], P["model.norm.weight"])) * cfg.output_multiplier_scale
    return logits, moe_stats


def naive_logits(cfg: ref.Config, params, tokens) -> torch.Tensor:
    return naive_forward(cfg, params, tokens)[0]


def check_against_naive(cfg, params, tokens, label):
    with torch.no_grad():
        fast, fast_moe = ref.forward_with_router(cfg, {k: v.detach().to(F64) for k, v in params.items()}, tokens)
    slow, slow_moe = naive_forward(cfg, params, tokens)
    worst = float((fast - slow).abs().max())
    assert worst < 1e-11, f"{label}: model.forward and the loop-based forward differ by {worst}"
    assert len(fast_moe) == len(slow_moe) == len(cfg.moe_layers)
    extra = ""
    for f, s in zip(fast_moe, slow_moe):
        assert f.experts.tolist() == s["experts"], f"{label}: layer {f.layer}: top-k experts differ"
        assert f.counts.tolist() == s["counts"] and f.dropped == s["dropped"], f"{label}: layer {f.layer}: counts"
        for key in ("aux", "z"):
            diff = abs(float(getattr(f, key)) - s[key])
            assert diff < 1e-12, f"{label}: layer {f.layer}: {key} differs from the loop-based one by {diff}"
        extra += (f"; layer {f.layer}: aux {float(f.aux):.4f}, z {float(f.z):.4f}, counts {f.counts.tolist()}, "
                  f"dropped {f.dropped}")
    print(f"check_reference: {label}: loop-based forward matches, max |diff| {worst:.1e}{extra}")


def min_margin(cfg, params, tokens):
    """Smallest p_k - p_(k+1) over every token of every MoE layer (inf if dense)."""
    with torch.no_grad():
        _, moe = ref.forward_with_router(cfg, {k: v.detach().to(F64) for k, v in params.items()}, tokens)
    return min([float(s.margin.min()) for s in moe], default=math.inf)


# ---------------------------------------------------------------- 3. gradients

def check_gradcheck(cfg, label):
    params = spread_params(cfg, seed=3)
    names = list(params)
    tokens, targets = batch(cfg, B=2, T=5, seed=4)
    # A routing decision must not flip within the finite-difference step.
    margin = min_margin(cfg, params, tokens)
    assert margin > 1e-4, f"{label}: top-k margin {margin} too small for gradcheck"

    def loss_of(*values):
        return ref.loss(cfg, dict(zip(names, values)), tokens, targets)

    inputs = tuple(params[n] for n in names)
    assert torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
    count = sum(p.numel() for p in inputs)
    extra = ""
    if cfg.is_moe:
        _, moe = ref.forward_with_router(cfg, params, tokens)
        extra = (f" (total loss with aux and z; router included; min top-k margin {margin:.1e}; "
                 f"dropped {[s.dropped for s in moe]})")
    print(f"check_reference: {label}: torch.autograd.gradcheck over all {count} parameters: ok{extra}")


def check_finite_differences(cfg, params, tokens, targets, label, per_tensor=3, seed=5):
    """Central differences on `per_tensor` sampled elements of every parameter."""
    P = {k: v.detach().to(F64).clone().requires_grad_(True) for k, v in params.items()}
    loss = ref.loss(cfg, P, tokens, targets)
    loss.backward()
    ref.zero_missing_grads(P)
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
                up = float(ref.loss(cfg, P, tokens, targets))
                flat[idx] = saved - h
                down = float(ref.loss(cfg, P, tokens, targets))
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
        logits, moe = ref.forward_with_router(cfg, params, tokens)
        loss = float(ref.cross_entropy_loss(logits, targets))
    ln_v = math.log(cfg.vocab_size)
    assert abs(loss - ln_v) < 0.02 * ln_v, f"{label}: untrained loss {loss} is far from ln(V) = {ln_v}"
    extra = ""
    if moe:
        # A near-uniform router: aux near 1, z near (ln E)^2.
        aux = float(torch.stack([s.aux for s in moe]).mean())
        z = float(torch.stack([s.z for s in moe]).mean())
        ln_e2 = math.log(cfg.num_experts) ** 2
        assert abs(aux - 1) < 0.05 and abs(z - ln_e2) < 0.02 * ln_e2, f"{label}: untrained aux {aux}, z {z}"
        extra = f"; aux {aux:.4f} vs 1, z {z:.4f} vs (ln E)^2 {ln_e2:.4f}"
    print(f"check_reference: {label}: untrained loss {loss:.4f} vs ln(V) {ln_v:.4f}{extra}")


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
        ref.loss(cfg, torch_params, tokens, targets).backward()
        ref.zero_missing_grads(torch_params)
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(torch_params.values()), hyper["max_norm"])))
        opt.step()

    hand = {k: v.detach().clone() for k, v in start.items()}
    state = {}
    for step, (tokens, targets) in enumerate(batches, start=1):
        P = {k: v.clone().requires_grad_(True) for k, v in hand.items()}
        ref.loss(cfg, P, tokens, targets).backward()
        ref.zero_missing_grads(P)
        with torch.no_grad():
            clip_and_adamw_by_hand(hand, {k: P[k].grad for k in P}, state, step, hyper["lr"], hyper["beta1"],
                                   hyper["beta2"], hyper["eps"], hyper["weight_decay"], hyper["max_norm"])
    worst = max(float((torch_params[k].detach() - hand[k]).abs().max()) for k in hand)
    assert worst < 1e-14, f"{label}: torch AdamW and the hand-written update differ by {worst}"
    assert max(norms) > hyper["max_norm"], f"{label}: clipping was never active (grad norms {norms})"
    print(f"check_reference: {label}: clip_grad_norm_ + AdamW equal the hand-written update "
          f"(max |diff| {worst:.1e}; grad norms {norms[0]:.3f}, {norms[1]:.3f})")


# ---------------------------------------------------------------- 6. MoE by hand

def moe_case(router, seed, **overrides):
    """A config and parameters for calling model.moe_ffn on layer 0 directly,
    with the given router [E, H] and random experts."""
    E, H = router.shape
    d = dict(hidden_size=H, intermediate_size=3, num_experts=E, num_experts_per_tok=2)
    d.update(overrides)
    cfg = tiny_config(**d)
    gen = torch.Generator().manual_seed(seed)
    params = {"model.layers.0.block_sparse_moe.gate.weight": router.to(F64)}
    for e in range(E):
        ex = f"model.layers.0.block_sparse_moe.experts.{e}."
        params[ex + "w1.weight"] = 0.5 * torch.randn(3, H, generator=gen, dtype=F64)
        params[ex + "w3.weight"] = 0.5 * torch.randn(3, H, generator=gen, dtype=F64)
        params[ex + "w2.weight"] = 0.5 * torch.randn(H, 3, generator=gen, dtype=F64)
    return cfg, params


def run_moe_case(cfg, params, f, label):
    """model.moe_ffn and the loop-based naive_moe on the same inputs; they must agree."""
    y, stats = ref.moe_ffn(cfg, params, 0, f)
    ys, naive = naive_moe(cfg, params, 0, list(f))
    diff = float((y - torch.stack(ys)).abs().max())
    assert diff < 1e-14, f"{label}: moe_ffn and naive_moe differ by {diff}"
    assert stats.experts.tolist() == naive["experts"] and stats.counts.tolist() == naive["counts"], label
    assert stats.dropped == naive["dropped"], label
    assert abs(float(stats.aux) - naive["aux"]) < 1e-14 and abs(float(stats.z) - naive["z"]) < 1e-13, label
    return y, stats


def check_moe_config():
    cfg = tiny_config(num_local_experts=4, moe_layer_frequency=2, num_hidden_layers=3)
    assert cfg.num_experts == 4 and cfg.num_experts_per_tok == 2 and cfg.moe_layers == [0, 2]
    assert (cfg.router_aux_loss_coef, cfg.router_z_loss_coef, cfg.capacity_factor) == (0.01, 0.001, 0.0)
    names = [n for n, _ in ref.parameter_shapes(cfg)]
    assert "model.layers.1.mlp.gate_proj.weight" in names and "model.layers.0.mlp.gate_proj.weight" not in names
    i = names.index("model.layers.2.block_sparse_moe.gate.weight")
    assert names[i - 1] == "model.layers.2.post_feedforward_layernorm.weight"  # sandwich on: the last norm
    assert names[i + 1:i + 4] == [f"model.layers.2.block_sparse_moe.experts.0.{w}.weight" for w in ("w1", "w3", "w2")]
    assert tiny_config(num_experts=1).moe_layers == [] and tiny_config().moe_layers == []
    try:
        tiny_config(num_experts=4, num_local_experts=4)
    except ValueError:
        pass
    else:
        raise AssertionError("num_experts and num_local_experts together must be an error")
    print("check_reference: MoE config: num_local_experts alias, default top-2, moe_layer_frequency, "
          "parameter order (router, then w1, w3, w2 per expert, where mlp.* would be): ok")


def check_moe_ties_and_uniform():
    gen = torch.Generator().manual_seed(31)
    H, N = 4, 6
    f = torch.randn(N, H, generator=gen, dtype=F64)

    # Ties at the top-k boundary: rows [2b, b, b, -b] make p1 == p2 exactly.
    # b.x > 0: p0 > p1 = p2 > p3 -> experts (0, 1); b.x < 0: p3 > p1 = p2 > p0 -> (3, 1).
    b = torch.randn(H, generator=gen, dtype=F64)
    for renormalize in (False, True):
        cfg, params = moe_case(torch.stack([2 * b, b, b, -b]), seed=32, router_renormalize=renormalize)
        _, stats = run_moe_case(cfg, params, f, "tie case")
        r = f @ params["model.layers.0.block_sparse_moe.gate.weight"].T
        assert torch.equal(r[:, 1], r[:, 2])
        want = [[0, 1] if float(f[n] @ b) > 0 else [3, 1] for n in range(N)]
        assert stats.experts.tolist() == want, f"ties: got {stats.experts.tolist()}, want {want}"
        assert len({tuple(w) for w in want}) == 2  # both signs occur

    # A zero router: p = 1/E exactly, every token takes experts (0, 1) by the
    # tie rule, P_e = 1/E, so aux = E * sum_e f_e / E = 1 and z = (ln E)^2.
    cfg, params = moe_case(torch.zeros(4, H), seed=33)
    _, stats = run_moe_case(cfg, params, f, "zero router")
    assert stats.experts.tolist() == [[0, 1]] * N
    assert abs(float(stats.aux) - 1) < 1e-15 and abs(float(stats.z) - math.log(4) ** 2) < 1e-14
    aux_zero = float(stats.aux)

    # Balanced assignments: token n prefers expert n % 4, then (n + 1) % 4;
    # every expert gets 2N/4 assignments, f_e = 1/4, aux = sum_e P_e = 1.
    eye = torch.eye(H, dtype=F64)
    cyc = torch.stack([1.5 * eye[n % 4] + 1.0 * eye[(n + 1) % 4] for n in range(8)])
    cfg, params = moe_case(2.0 * eye, seed=34)
    _, stats = run_moe_case(cfg, params, cyc, "balanced")
    assert stats.experts.tolist() == [[n % 4, (n + 1) % 4] for n in range(8)]
    assert stats.counts.tolist() == [4, 4, 4, 4]
    assert abs(float(stats.aux) - 1) < 1e-15, float(stats.aux)
    aux_balanced = float(stats.aux)

    # Everything to experts 0 and 1 with high probability: aux = 2 (P_0 + P_1), near 2.
    skew = torch.stack([torch.tensor([3.0, 2.0, 0.0, 0.0], dtype=F64)] * 8)
    _, stats = run_moe_case(cfg, params, skew, "skewed")
    assert stats.counts.tolist() == [8, 8, 0, 0] and float(stats.aux) > 1.9
    print(f"check_reference: MoE: boundary ties go to the lower expert (p1 == p2 -> expert 1); "
          f"aux = 1 for uniform routing (zero router {aux_zero:.15f}, balanced assignments {aux_balanced:.15f}), "
          f"{float(stats.aux):.4f} when skewed; loop-based MoE agrees")


def check_moe_capacity():
    """E = 3, k = 2, N = 4, c = 0.75: capacity ceil(0.75 * 8 / 3) = 2. With a
    router equal to the identity, r = f, so the rows of f are the logits:
        token 0: (3, 2, 0) -> experts (0, 1)
        token 1: (3, 0, 2) -> experts (0, 2)
        token 2: (2, 3, 0) -> experts (1, 0)   expert 0's third assignment: dropped
        token 3: (0, 2, 3) -> experts (2, 1)   expert 1's third assignment: dropped
    Token 2 and 3 keep only their slot 0; a dropped slot adds nothing, and
    its weight is not redistributed (renormalization is over the top-k)."""
    f = torch.tensor([[3.0, 2.0, 0.0], [3.0, 0.0, 2.0], [2.0, 3.0, 0.0], [0.0, 2.0, 3.0]], dtype=F64)
    want_experts = [[0, 1], [0, 2], [1, 0], [2, 1]]
    want_kept = [[True, True], [True, True], [True, False], [True, False]]
    for renormalize in (False, True):
        cfg, params = moe_case(torch.eye(3, dtype=F64), seed=41, capacity_factor=0.75,
                               router_renormalize=renormalize)
        assert ref.expert_capacity(cfg, 4) == 2
        y, stats = run_moe_case(cfg, params, f, "capacity")
        assert stats.experts.tolist() == want_experts and stats.kept.tolist() == want_kept
        assert stats.dropped == 2 and stats.counts.tolist() == [3, 3, 2]

        # By hand: y[n] = sum over kept slots of w[n, j] * expert_e(f[n]).
        for n in range(4):
            p = [math.exp(v) for v in f[n].tolist()]
            p = [v / sum(p) for v in p]
            w = [p[e] for e in want_experts[n]]
            if renormalize:
                w = [v / sum(w) for v in w]
            want = torch.zeros(3, dtype=F64)
            for j, e in enumerate(want_experts[n]):
                if want_kept[n][j]:
                    ex = f"model.layers.0.block_sparse_moe.experts.{e}."
                    g = ref.activation(cfg, params[ex + "w1.weight"] @ f[n]) * (params[ex + "w3.weight"] @ f[n])
                    want = want + w[j] * (params[ex + "w2.weight"] @ g)
            assert float((y[n] - want).abs().max()) < 1e-14, (n, y[n], want)

        # Dropless (c = 0) and c = 0.8 (capacity ceil(2.13) = 3) keep everything
        # and agree; tokens 0 and 1 are the same as with dropping.
        outs = []
        for c in (0.0, 0.8):
            cfg_c, _ = moe_case(torch.eye(3, dtype=F64), seed=41, capacity_factor=c, router_renormalize=renormalize)
            y_c, stats_c = run_moe_case(cfg_c, params, f, f"capacity {c}")
            assert stats_c.dropped == 0 and stats_c.kept.all() and float(stats_c.aux) == float(stats.aux)
            outs.append(y_c)
        assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0][:2], y[:2])
        assert float((outs[0][2:] - y[2:]).abs().min()) > 1e-3
    print("check_reference: MoE: capacity 0.75 (2 per expert) drops exactly the hand-picked assignments "
          "(token 2 slot 1, token 3 slot 1), by hand and in the loop-based MoE; c = 0 and 0.8 drop nothing")


def run_all():
    torch.set_num_threads(1)
    check_formulas()
    check_moe_config()
    check_moe_ties_and_uniform()
    check_moe_capacity()
    for label, overrides in CONFIGS:
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
