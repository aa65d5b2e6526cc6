"""Writes the committed reference fixtures tests/fixtures/<name>/{config.json,
state.safetensors} from the PyTorch reference (model.py). See README.md for
what each file holds and the tolerance policy.

Run from anywhere:  /usr/bin/python3 tests/reference/make_fixtures.py
(Debian's python, which has torch; the output is the same bytes every run.)
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import check_reference  # noqa: E402
import model as ref  # noqa: E402

F64 = torch.float64
IGNORE_U32 = 0xFFFFFFFF
BATCH, SEQ = 2, 9

# Optimizer of both fixtures, written into each file's __metadata__ so the
# C++ test reads them rather than repeating them.
HYPER = {
    "lr": 1e-2,
    "beta1": 0.9,
    "beta2": 0.95,
    "eps": 1e-8,
    "weight_decay": 0.1,     # on tensors with >= 2 dims
    "weight_decay_1d": 0.0,  # on 1-D (norm) tensors
    "max_grad_norm": 1.0,
    "clip_eps": 1e-6,        # clip_grad_norm_ scales by max_norm / (norm + clip_eps), capped at 1
}

# Tolerance policy (README.md) for a float32 implementation checked against
# these float64 results: a tensor passes when
#     max|got - want| <= atol + rtol * max|want|        (atol, rtol) below.
# make_fixtures.py asserts that torch's own float32 run passes every one.
TOLERANCES = {
    "logits": (1e-6, 1e-5),
    "loss": (1e-6, 1e-5),         # loss, and loss2 after one optimizer step
    "grad_norm": (0.0, 1e-5),     # grad_norm, grad_norm2
    "grad": (1e-8, 1e-4),         # grad.*, per tensor
    "grad2": (1e-8, 1e-4),        # grads of step 2, end to end
    "adamw2_from_stored_grads": (1e-6, 2e-6),
}
# End to end (the implementation's own grads drive AdamW), the first AdamW
# steps move each element by about lr * sign(grad), so an element whose grad
# is near zero can land anywhere within 2 * lr: bound the mean, and the max
# loosely.
ADAMW2_END_TO_END_MEAN = 1e-6
ADAMW2_END_TO_END_MAX = 1e-3

FIXTURES = {
    # Every Grok option on: tied embeddings, gated GELU (tanh), sandwich
    # norms, a soft cap small enough that tanh bends the scores, an attention
    # multiplier that is not 1/sqrt(D), Grok's embedding and output
    # multipliers, GQA, and a head dim with Hq * D != H.
    "grok_tiny": {
        "config": {
            "model_type": "grok-1",
            "vocab_size": 67,
            "hidden_size": 24,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "intermediate_size": 40,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "max_position_embeddings": 64,
            "tie_word_embeddings": True,
            "hidden_act": "gelu_pytorch_tanh",
            "attn_output_multiplier": 0.25,
            "attn_logit_softcapping": 5.0,
            "sandwich_norm": True,
            "embedding_multiplier_scale": 78.38367176906169,
            "output_multiplier_scale": 0.5773502691896257,
            "num_experts": 0,
        },
        "seed": 1234,
        "embed_std": 0.05,
        "matrix_std": 0.35,
    },
    # Llama: untied, SwiGLU, no sandwich norms, no soft cap, multipliers 1,
    # plain multi-head attention. head_dim and attn_output_multiplier are
    # left out to exercise their defaults (H / Hq and 1 / sqrt(D)); the
    # informational Hugging Face keys must be accepted and ignored.
    "llama_tiny": {
        "config": {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": 67,
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "intermediate_size": 32,
            "rms_norm_eps": 1e-6,
            "rope_theta": 500000.0,
            "max_position_embeddings": 64,
            "tie_word_embeddings": False,
            "hidden_act": "silu",
            "attn_logit_softcapping": None,
            "sandwich_norm": False,
            "embedding_multiplier_scale": 1.0,
            "output_multiplier_scale": 1.0,
            "num_experts": 0,
            "torch_dtype": "float32",
        },
        "seed": 5678,
        "embed_std": 0.5,
        "matrix_std": 0.35,
    },
    # grok_tiny's options with Grok-1 routing: every layer MoE, E = 4, top-2,
    # weights = the softmax over all experts (not renormalized), dropless.
    # The aux and z coefficients are large enough that their share of the
    # gradient is far above the grad tolerance (make_fixture asserts it).
    "grok_moe_tiny": {
        "config": {
            "model_type": "grok-1",
            "vocab_size": 67,
            "hidden_size": 24,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "intermediate_size": 16,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "max_position_embeddings": 64,
            "tie_word_embeddings": True,
            "hidden_act": "gelu_pytorch_tanh",
            "attn_output_multiplier": 0.25,
            "attn_logit_softcapping": 5.0,
            "sandwich_norm": True,
            "embedding_multiplier_scale": 78.38367176906169,
            "output_multiplier_scale": 0.5773502691896257,
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "router_renormalize": False,
            "moe_layer_frequency": 1,
            "router_aux_loss_coef": 0.1,
            "router_z_loss_coef": 0.01,
            "capacity_factor": 0.0,
        },
        "seed": 2472,  # smallest top-k margin 2.5e-3 (2468 gave 1.2e-3, 2469 5.7e-4)
        "embed_std": 0.05,
        "matrix_std": 0.35,
    },
    # Mixtral: untied, SwiGLU experts, no sandwich norms, no soft cap, GQA;
    # top-2 weights renormalized; moe_layer_frequency 2 with L = 2, so layer 0
    # is MoE and layer 1 dense (mlp.* names) and the loss means are over one
    # MoE layer, not L. Mixtral's own key num_local_experts (the alias of
    # num_experts) and informational keys.
    "mixtral_moe_tiny": {
        "config": {
            "architectures": ["MixtralForCausalLM"],
            "model_type": "mixtral",
            "vocab_size": 67,
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 24,
            "rms_norm_eps": 1e-5,
            "rope_theta": 1000000.0,
            "max_position_embeddings": 64,
            "tie_word_embeddings": False,
            "hidden_act": "silu",
            "attn_logit_softcapping": None,
            "sandwich_norm": False,
            "embedding_multiplier_scale": 1.0,
            "output_multiplier_scale": 1.0,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "router_renormalize": True,
            "moe_layer_frequency": 2,
            "router_aux_loss_coef": 0.1,
            "router_z_loss_coef": 0.01,
            "capacity_factor": 0.0,
            "torch_dtype": "float32",
        },
        "seed": 1357,
        "embed_std": 0.5,
        "matrix_std": 0.35,
    },
}

# Routing must be decisive: on every token of both batches, at every MoE
# layer, p_k - p_(k+1) above this, so float32 rounding (about 1e-7) cannot
# change which experts a token goes to.
MIN_TOPK_MARGIN = 1e-3
# The aux and z terms' own share of each router gradient must exceed the
# grad tolerance by this factor: an implementation that drops either fails.
AUX_Z_GRAD_FACTOR = 10.0


def fixture_params(cfg, spec):
    """Larger than the docs/model.md init (0.02) so that the soft cap, GELU and
    softmax are non-linear and norm weights are not all 1: a fixture made of
    near-zero weights would pass a model with those parts wrong. Rounded to
    float32 first, so the stored F32 parameters are exactly the ones used."""
    gen = torch.Generator().manual_seed(spec["seed"])
    params = {}
    for name, shape in ref.parameter_shapes(cfg):
        noise = torch.randn(shape, generator=gen, dtype=F64)
        if len(shape) == 1:
            value = 1.0 + 0.2 * noise
        elif name == "model.embed_tokens.weight":
            value = spec["embed_std"] * noise
        else:
            value = spec["matrix_std"] * noise
        params[name] = value.to(torch.float32).to(F64)
    return params


def make_batch(cfg, gen, ignore):
    """Tokens [B, T] and next-token targets; positions in `ignore` are masked."""
    stream = torch.randint(0, cfg.vocab_size, (BATCH, SEQ + 1), generator=gen)
    stream[0, 0], stream[1, 3] = 0, cfg.vocab_size - 1  # both ends of the vocabulary
    tokens, targets = stream[:, :-1].clone(), stream[:, 1:].clone()
    for b, t in ignore:
        targets[b, t] = ref.IGNORE_INDEX
    return tokens, targets


def run_steps(cfg, start, batches, dtype):
    """Loss, logits and grads on batch 1; clip + AdamW step 1; loss and grads
    on batch 2; clip + AdamW step 2. Returns float64 copies of everything."""
    params = {k: v.to(dtype).clone().requires_grad_(True) for k, v in start.items()}
    opt = ref.make_adamw(params, HYPER["lr"], (HYPER["beta1"], HYPER["beta2"]), HYPER["eps"],
                         HYPER["weight_decay"])
    out = {}
    for step, (tokens, targets) in enumerate(batches, start=1):
        suffix = "" if step == 1 else str(step)
        opt.zero_grad()
        logits, moe = ref.forward_with_router(cfg, params, tokens)
        parts = ref.total_loss(cfg, logits, targets, moe)
        loss = parts.total  # the cross-entropy itself when dense
        loss.backward()
        ref.zero_missing_grads(params)
        if step == 1:
            out["logits"] = logits.detach().to(F64)
            if moe:
                out["ce_loss"] = parts.ce.detach().to(F64).reshape(1)
                out["aux_loss"] = parts.aux.detach().to(F64).reshape(1)
                out["z_loss"] = parts.z.detach().to(F64).reshape(1)
                out["expert_counts"] = torch.stack([s.counts for s in moe])
        out["moe" + suffix] = moe
        out["loss" + suffix] = loss.detach().to(F64).reshape(1)
        out["grads" + suffix] = {k: p.grad.detach().to(F64).clone() for k, p in params.items()}
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), HYPER["max_grad_norm"])
        out["grad_norm" + suffix] = norm.detach().to(F64).reshape(1)
        opt.step()
    out["adamw2"] = {k: p.detach().to(F64).clone() for k, p in params.items()}
    return out


def optimizer_only(start, grads_per_step, dtype):
    """Clip + AdamW fed with given gradients instead of the model's: what a
    C++ optimizer test does with the stored grad.* and grad2.*."""
    params = {k: v.to(dtype).clone().requires_grad_(True) for k, v in start.items()}
    opt = ref.make_adamw(params, HYPER["lr"], (HYPER["beta1"], HYPER["beta2"]), HYPER["eps"],
                         HYPER["weight_decay"])
    for grads in grads_per_step:
        for k, p in params.items():
            p.grad = grads[k].to(dtype).clone()
        torch.nn.utils.clip_grad_norm_(list(params.values()), HYPER["max_grad_norm"])
        opt.step()
    return {k: p.detach().to(F64) for k, p in params.items()}


def aux_z_gradient_share(cfg, params, tokens, targets):
    """For each parameter: max |d(coef_aux * aux)/dp| and max |d(coef_z * z)/dp|
    on batch 1, over the grad tolerance of that tensor (atol + rtol * max|d total/dp|):
    how far a model that left out either term's gradient would miss."""
    P = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    logits, moe = ref.forward_with_router(cfg, P, tokens)
    parts = ref.total_loss(cfg, logits, targets, moe)
    names = list(P)

    def grads(value):
        gs = torch.autograd.grad(value, [P[n] for n in names], retain_graph=True, allow_unused=True)
        return {n: torch.zeros_like(P[n]) if g is None else g for n, g in zip(names, gs)}

    total = grads(parts.total)
    aux = grads(cfg.router_aux_loss_coef * parts.aux)
    z = grads(cfg.router_z_loss_coef * parts.z)
    atol, rtol = TOLERANCES["grad"]
    share = {}
    for n in names:
        limit = atol + rtol * float(total[n].abs().max())
        share[n] = (float(aux[n].abs().max()) / limit, float(z[n].abs().max()) / limit)
    return share


def compare(label, got, want, tolerance):
    atol, rtol = tolerance
    diff = float((got - want).abs().max())
    scale = float(want.abs().max())
    limit = atol + rtol * scale
    assert diff <= limit, f"{label}: float32 differs from float64 by {diff:.3e} > {limit:.3e}"
    return diff, limit


def score_stats(cfg, params, tokens):
    """Layer 0 attention scores before the soft cap: how non-linear is tanh?"""
    with torch.no_grad():
        h = params["model.embed_tokens.weight"][tokens] * cfg.embedding_multiplier_scale
        a = ref.rmsnorm(h, params["model.layers.0.input_layernorm.weight"], cfg.rms_norm_eps)
        B, T, _ = a.shape
        D = cfg.head_dim
        cos, sin = ref.rope_tables(cfg, T, F64)
        q = ref.apply_rope((a @ params["model.layers.0.self_attn.q_proj.weight"].T).view(B, T, -1, D), cos, sin)
        k = ref.apply_rope((a @ params["model.layers.0.self_attn.k_proj.weight"].T).view(B, T, -1, D), cos, sin)
        k = k.repeat_interleave(cfg.num_attention_heads // cfg.num_key_value_heads, dim=2)
        s = torch.einsum("bihd,bjhd->bhij", q, k) * cfg.attn_output_multiplier
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        s = s[:, :, causal].abs()
    return float(s.max()), float(s.mean())


# ---------------------------------------------------------------- safetensors

DTYPE_NAMES = {np.dtype(np.float32): "F32", np.dtype(np.uint32): "U32"}


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array). Same layout as the C++ writer:
    8-byte little-endian header length, JSON header padded with spaces to 8
    bytes, data in the order given (all 4-byte types here, so aligned)."""
    header = {"__metadata__": metadata}
    offset = 0
    for name, array in tensors:
        header[name] = {"dtype": DTYPE_NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, array in tensors:
            f.write(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n:]
    kinds = {"F32": np.float32, "U32": np.uint32}
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=kinds[info["dtype"]]).reshape(info["shape"])
    return out, metadata


def as_u32(targets):
    t = targets.numpy()
    return np.where(t < 0, IGNORE_U32, t).astype(np.uint32)


def as_f32(tensor):
    return tensor.detach().to(torch.float32).numpy()


# ---------------------------------------------------------------- main

def make_fixture(name, spec):
    cfg = ref.Config.from_dict(spec["config"])
    gen = torch.Generator().manual_seed(spec["seed"] + 1)
    tokens, targets = make_batch(cfg, gen, ignore=[(0, 3), (1, 0), (1, 8)])
    tokens2, targets2 = make_batch(cfg, gen, ignore=[(0, 8), (1, 5)])
    batches = [(tokens, targets), (tokens2, targets2)]
    params = fixture_params(cfg, spec)
    names = [n for n, _ in ref.parameter_shapes(cfg)]

    # The reference itself: the loop-based forward and finite differences on
    # this very fixture's parameters.
    check_reference.check_against_naive(cfg, params, tokens, name)
    check_reference.check_finite_differences(cfg, params, tokens, targets, name)

    want = run_steps(cfg, params, batches, F64)
    got = run_steps(cfg, params, batches, torch.float32)
    stored_grads = [{k: g.to(torch.float32).to(F64) for k, g in want[key].items()} for key in ("grads", "grads2")]
    optimizer_alone = optimizer_only(params, stored_grads, torch.float32)

    # The tolerance policy, checked on torch's own float32 run.
    report = {}
    for key, tol in (("logits", "logits"), ("loss", "loss"), ("loss2", "loss"), ("grad_norm", "grad_norm"),
                     ("grad_norm2", "grad_norm")):
        report[key] = compare(f"{name} {key}", got[key], want[key], TOLERANCES[tol])
    moe_layers = cfg.moe_layers
    if moe_layers:
        for key in ("ce_loss", "aux_loss", "z_loss"):
            report[key] = compare(f"{name} {key}", got[key], want[key], TOLERANCES["loss"])
        # Same routing in float32 as in float64, on both batches, and decisive.
        for suffix in ("", "2"):
            for g, w in zip(got["moe" + suffix], want["moe" + suffix]):
                assert torch.equal(g.experts, w.experts), f"{name}: float32 routes batch {suffix or 1} differently"
        margins = {suffix: [float(s.margin.min()) for s in want["moe" + suffix]] for suffix in ("", "2")}
        worst_margin = min(min(m) for m in margins.values())
        assert worst_margin > MIN_TOPK_MARGIN, \
            f"{name}: top-k margin {worst_margin:.2e} <= {MIN_TOPK_MARGIN}: near-tie, choose another seed"
        assert all(s.dropped == 0 for s in want["moe"] + want["moe2"])
        share = aux_z_gradient_share(cfg, params, tokens, targets)
        for l in moe_layers:
            router = f"model.layers.{l}.block_sparse_moe.gate.weight"
            assert min(share[router]) > AUX_Z_GRAD_FACTOR, \
                f"{name}: {router}: aux/z gradient only {share[router]} x the grad tolerance"
    for key, tol, got_set in (("grads", "grad", got["grads"]), ("grads2", "grad2", got["grads2"]),
                              ("adamw2", "adamw2_from_stored_grads", optimizer_alone)):
        label = key + (" (optimizer alone, from stored grads)" if key == "adamw2" else "") + ", worst tensor"
        report[label] = max((compare(f"{name} {key} {k}", got_set[k], want[key][k], TOLERANCES[tol])
                             for k in names), key=lambda r: r[0] / r[1])
    moved = torch.cat([(got["adamw2"][k] - want["adamw2"][k]).abs().reshape(-1) for k in names])
    assert float(moved.mean()) <= ADAMW2_END_TO_END_MEAN and float(moved.max()) <= ADAMW2_END_TO_END_MAX
    report["adamw2 end to end, mean"] = (float(moved.mean()), ADAMW2_END_TO_END_MEAN)
    report["adamw2 end to end, max"] = (float(moved.max()), ADAMW2_END_TO_END_MAX)

    counted = int((targets >= 0).sum())
    score_max, score_mean = score_stats(cfg, params, tokens)
    all_grads = torch.cat([g.reshape(-1) for g in want["grads"].values()])
    tiny = int(((all_grads != 0) & (all_grads.abs() < 1e-6)).sum())
    zero = int((all_grads == 0).sum())
    print(f"{name}: loss {float(want['loss']):.6f} (ln V = {math.log(cfg.vocab_size):.6f}) over {counted} counted "
          f"positions; loss2 {float(want['loss2']):.6f}")
    print(f"{name}: grad norms {float(want['grad_norm']):.4f}, {float(want['grad_norm2']):.4f} "
          f"(clipped to {HYPER['max_grad_norm']})")
    if cfg.softcap > 0:
        print(f"{name}: layer-0 scores before the cap: max |s| {score_max:.2f}, mean |s| {score_mean:.2f}; "
              f"cap {cfg.softcap} -> tanh(max/cap)*cap = {cfg.softcap * math.tanh(score_max / cfg.softcap):.2f}")
    print(f"{name}: gradient elements: {all_grads.numel()}, exactly zero {zero}, 0 < |g| < 1e-6: {tiny}")
    if moe_layers:
        print(f"{name}: MoE layers {moe_layers}; batch 1: loss {float(want['loss']):.6f} = ce {float(want['ce_loss']):.6f}"
              f" + {cfg.router_aux_loss_coef} * aux {float(want['aux_loss']):.6f}"
              f" + {cfg.router_z_loss_coef} * z {float(want['z_loss']):.6f}")
        for suffix in ("", "2"):
            for s in want["moe" + suffix]:
                print(f"{name}: batch {suffix or 1} layer {s.layer}: aux {float(s.aux):.6f}, z {float(s.z):.6f}, "
                      f"expert counts {s.counts.tolist()}, dropped {s.dropped}, "
                      f"min top-k margin p_k - p_k+1 {float(s.margin.min()):.2e}")
        for l in moe_layers:
            router = f"model.layers.{l}.block_sparse_moe.gate.weight"
            print(f"{name}: {router}: aux / z share of the gradient = {share[router][0]:.0f}x / "
                  f"{share[router][1]:.0f}x the grad tolerance")
        over = [n for n in names if min(share[n]) > 1]
        print(f"{name}: tensors whose aux and z gradient shares both exceed the grad tolerance: "
              f"{len(over)} of {len(names)}")
    for label, (diff, limit) in report.items():
        print(f"{name}: torch float32 vs float64 {label}: max |diff| {diff:.2e} (tolerance {limit:.2e})")

    tensors = [
        ("tokens", tokens.numpy().astype(np.uint32)),
        ("targets", as_u32(targets)),
        ("tokens2", tokens2.numpy().astype(np.uint32)),
        ("targets2", as_u32(targets2)),
        ("logits", as_f32(want["logits"])),
        ("loss", as_f32(want["loss"])),
        ("grad_norm", as_f32(want["grad_norm"])),
        ("loss2", as_f32(want["loss2"])),
        ("grad_norm2", as_f32(want["grad_norm2"])),
    ]
    if moe_layers:
        tensors += [
            ("ce_loss", as_f32(want["ce_loss"])),
            ("aux_loss", as_f32(want["aux_loss"])),
            ("z_loss", as_f32(want["z_loss"])),
            ("expert_counts", want["expert_counts"].numpy().astype(np.uint32)),
        ]
    tensors += [(n, as_f32(params[n])) for n in names]
    tensors += [("grad." + n, as_f32(want["grads"][n])) for n in names]
    tensors += [("grad2." + n, as_f32(want["grads2"][n])) for n in names]
    tensors += [("adamw2." + n, as_f32(want["adamw2"][n])) for n in names]
    metadata = {
        "fixture": name,
        "generator": "tests/reference/make_fixtures.py",
        "torch_version": torch.__version__.split("+")[0],
        "compute_dtype": "float64",
        "seed": str(spec["seed"]),
        "ignore_index": str(IGNORE_U32),
        "loss_reduction": "mean over counted positions of the whole batch",
        "parameters": ",".join(names),
        "optimizer": "torch.optim.AdamW",
        "adamw_steps": "2",
        "lr_schedule": "constant",
        "grad_clip": "torch.nn.utils.clip_grad_norm_ before each step",
    }
    metadata.update({k: repr(v) for k, v in HYPER.items()})
    if moe_layers:
        metadata["loss_reduction"] = ("cross-entropy (mean over counted positions of the whole batch) "
                                      "+ router_aux_loss_coef * aux_loss + router_z_loss_coef * z_loss")
        metadata["router_aux_loss_coef"] = repr(cfg.router_aux_loss_coef)
        metadata["router_z_loss_coef"] = repr(cfg.router_z_loss_coef)
        metadata["moe_layers"] = ",".join(str(l) for l in moe_layers)
    for key, (atol, rtol) in TOLERANCES.items():
        metadata[f"tolerance.{key}.atol"] = repr(atol)
        metadata[f"tolerance.{key}.rtol"] = repr(rtol)
    metadata["tolerance.adamw2_end_to_end.mean"] = repr(ADAMW2_END_TO_END_MEAN)
    metadata["tolerance.adamw2_end_to_end.max"] = repr(ADAMW2_END_TO_END_MAX)

    out_dir = os.path.join(ROOT, "tests", "fixtures", name)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(spec["config"], f, indent=2)
        f.write("\n")
    path = os.path.join(out_dir, "state.safetensors")
    write_safetensors(path, tensors, metadata)

    # Read back what was written.
    stored, stored_meta = read_safetensors(path)
    assert stored_meta == metadata and list(stored) == [n for n, _ in tensors]
    for n, array in tensors:
        assert stored[n].dtype == array.dtype and np.array_equal(stored[n], array), n
    print(f"{name}: wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


def main():
    check_reference.run_all()
    for name, spec in FIXTURES.items():
        make_fixture(name, spec)


if __name__ == "__main__":
    main()
