"""The model of docs/model.md in plain PyTorch: the reference the C++ model is
checked against. It follows the page line by line and favours being obviously
right over being fast. Dense FFN (`ffn()`) and the Mixture-of-Experts FFN
(`moe_ffn()`) with its auxiliary router losses.

Usage:
    cfg = Config.load("tests/fixtures/grok_tiny/config.json")
    params = init_params(cfg, seed=0, dtype=torch.float64)   # {HF name: tensor}
    logits = forward(cfg, params, tokens)                    # tokens: int64 [B, T]
    loss = cross_entropy_loss(logits, targets)               # targets: int64, -1 = ignore
    # With MoE layers the training loss is the total of docs/model.md:
    logits, moe = forward_with_router(cfg, params, tokens)   # moe: one MoeLayerStats per MoE layer
    parts = total_loss(cfg, logits, targets, moe)            # parts.total, .ce, .aux, .z
"""

import json
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

# A target equal to this does not count (0xFFFFFFFF when stored as uint32).
IGNORE_INDEX = -1

# Hugging Face keys that are accepted and ignored (docs/model.md).
INFORMATIONAL_KEYS = {
    "architectures", "torch_dtype", "transformers_version", "bos_token_id", "eos_token_id",
    "pad_token_id", "initializer_range", "use_cache", "attention_bias", "attention_dropout",
    "mlp_bias", "rope_scaling",
}
REQUIRED_KEYS = {
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "intermediate_size", "rms_norm_eps", "rope_theta", "tie_word_embeddings", "hidden_act",
}
OPTIONAL_KEYS = {
    "model_type", "head_dim", "max_position_embeddings", "attn_output_multiplier",
    "attn_logit_softcapping", "sandwich_norm", "embedding_multiplier_scale",
    "output_multiplier_scale", "num_experts", "num_local_experts", "num_experts_per_tok",
    "router_renormalize", "moe_layer_frequency", "router_aux_loss_coef", "router_z_loss_coef",
    "capacity_factor", "training",
}


@dataclass
class Config:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    tie_word_embeddings: bool
    hidden_act: str
    attn_output_multiplier: float
    attn_logit_softcapping: Optional[float]  # None or 0: off
    sandwich_norm: bool
    embedding_multiplier_scale: float
    output_multiplier_scale: float
    num_experts: int              # 0 or 1: dense
    num_experts_per_tok: int      # k
    router_renormalize: bool      # Mixtral: top-k weights renormalized to sum to 1
    moe_layer_frequency: int      # layer l is MoE iff num_experts > 1 and l % frequency == 0
    router_aux_loss_coef: float
    router_z_loss_coef: float
    capacity_factor: float        # 0: dropless
    model_type: str

    @staticmethod
    def from_dict(d: dict) -> "Config":
        for key in d:
            if key not in REQUIRED_KEYS | OPTIONAL_KEYS | INFORMATIONAL_KEYS:
                raise ValueError(f"config: unknown key '{key}'")
        for key in sorted(REQUIRED_KEYS):
            if key not in d:
                raise ValueError(f"config: missing key '{key}'")
        if "num_experts" in d and "num_local_experts" in d:
            raise ValueError("config: give 'num_experts' or its alias 'num_local_experts', not both")
        hidden, heads = d["hidden_size"], d["num_attention_heads"]
        head_dim = d.get("head_dim") or hidden // heads
        num_experts = int(d.get("num_experts", d.get("num_local_experts", 0)))
        cfg = Config(
            vocab_size=d["vocab_size"],
            hidden_size=hidden,
            num_hidden_layers=d["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=d["num_key_value_heads"],
            head_dim=head_dim,
            intermediate_size=d["intermediate_size"],
            rms_norm_eps=float(d["rms_norm_eps"]),
            rope_theta=float(d["rope_theta"]),
            max_position_embeddings=d.get("max_position_embeddings", 4096),
            tie_word_embeddings=bool(d["tie_word_embeddings"]),
            hidden_act=d["hidden_act"],
            attn_output_multiplier=float(d.get("attn_output_multiplier") or 1.0 / math.sqrt(head_dim)),
            attn_logit_softcapping=d.get("attn_logit_softcapping"),
            sandwich_norm=bool(d.get("sandwich_norm", False)),
            embedding_multiplier_scale=float(d.get("embedding_multiplier_scale", 1.0)),
            output_multiplier_scale=float(d.get("output_multiplier_scale", 1.0)),
            num_experts=num_experts,
            # Mixtral's top-2 by default (at most E).
            num_experts_per_tok=int(d.get("num_experts_per_tok", min(2, num_experts) if num_experts > 1 else 0)),
            router_renormalize=bool(d.get("router_renormalize", False)),
            moe_layer_frequency=int(d.get("moe_layer_frequency", 1)),
            router_aux_loss_coef=float(d.get("router_aux_loss_coef", 0.01)),
            router_z_loss_coef=float(d.get("router_z_loss_coef", 0.001)),
            capacity_factor=float(d.get("capacity_factor", 0.0)),
            model_type=d.get("model_type", ""),
        )
        if cfg.hidden_act not in ("gelu_pytorch_tanh", "silu"):
            raise ValueError(f"config: hidden_act '{cfg.hidden_act}' is not gelu_pytorch_tanh or silu")
        if cfg.num_attention_heads % cfg.num_key_value_heads != 0:
            raise ValueError("config: num_key_value_heads must divide num_attention_heads")
        if cfg.head_dim % 2 != 0:
            raise ValueError("config: head_dim must be even for RoPE")
        if cfg.is_moe and not 1 <= cfg.num_experts_per_tok <= cfg.num_experts:
            raise ValueError("config: num_experts_per_tok must be in 1..num_experts")
        if cfg.moe_layer_frequency < 1:
            raise ValueError("config: moe_layer_frequency must be at least 1")
        if cfg.router_aux_loss_coef < 0 or cfg.router_z_loss_coef < 0 or cfg.capacity_factor < 0:
            raise ValueError("config: router loss coefficients and capacity_factor must not be negative")
        return cfg

    @staticmethod
    def load(path: str) -> "Config":
        with open(path) as f:
            return Config.from_dict(json.load(f))

    @property
    def softcap(self) -> float:
        return float(self.attn_logit_softcapping or 0.0)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    def is_moe_layer(self, l: int) -> bool:
        return self.is_moe and l % self.moe_layer_frequency == 0

    @property
    def moe_layers(self) -> List[int]:
        return [l for l in range(self.num_hidden_layers) if self.is_moe_layer(l)]


# ---------------------------------------------------------------- parameters

def layer_parameter_shapes(cfg: Config, l: int) -> List[Tuple[str, Tuple[int, ...]]]:
    H, F, D = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
    q_dim, kv_dim = cfg.num_attention_heads * D, cfg.num_key_value_heads * D
    p = f"model.layers.{l}."
    shapes = [
        (p + "input_layernorm.weight", (H,)),
        (p + "self_attn.q_proj.weight", (q_dim, H)),
        (p + "self_attn.k_proj.weight", (kv_dim, H)),
        (p + "self_attn.v_proj.weight", (kv_dim, H)),
        (p + "self_attn.o_proj.weight", (H, q_dim)),
        # w_attn_out when sandwich_norm is on, w_ffn_in when it is off.
        (p + "post_attention_layernorm.weight", (H,)),
    ]
    if cfg.sandwich_norm:
        shapes += [
            (p + "pre_feedforward_layernorm.weight", (H,)),
            (p + "post_feedforward_layernorm.weight", (H,)),
        ]
    if cfg.is_moe_layer(l):
        # Mixtral's names, where the dense FFN would be: the router, then per
        # expert w1 (gate), w3 (up), w2 (down) -- src/model/counts.cc's order.
        m = p + "block_sparse_moe."
        shapes.append((m + "gate.weight", (cfg.num_experts, H)))
        for e in range(cfg.num_experts):
            shapes += [
                (m + f"experts.{e}.w1.weight", (F, H)),
                (m + f"experts.{e}.w3.weight", (F, H)),
                (m + f"experts.{e}.w2.weight", (H, F)),
            ]
        return shapes
    shapes += [
        (p + "mlp.gate_proj.weight", (F, H)),
        (p + "mlp.up_proj.weight", (F, H)),
        (p + "mlp.down_proj.weight", (H, F)),
    ]
    return shapes


def parameter_shapes(cfg: Config) -> List[Tuple[str, Tuple[int, ...]]]:
    """Every parameter, Hugging Face name and shape, in the order of the
    docs/model.md table (the order of the C++ parameter buffer)."""
    shapes = [("model.embed_tokens.weight", (cfg.vocab_size, cfg.hidden_size))]
    for l in range(cfg.num_hidden_layers):
        shapes += layer_parameter_shapes(cfg, l)
    shapes.append(("model.norm.weight", (cfg.hidden_size,)))
    if not cfg.tie_word_embeddings:
        shapes.append(("lm_head.weight", (cfg.vocab_size, cfg.hidden_size)))
    return shapes


def init_std(cfg: Config, name: str) -> float:
    """docs/model.md: linear and embedding weights normal(0, 0.02); the output
    projections of each block (Wo, Wdown; an expert's w2 is its Wdown)
    normal(0, 0.02 / sqrt(2L))."""
    if name.endswith("o_proj.weight") or name.endswith("down_proj.weight") or name.endswith(".w2.weight"):
        return 0.02 / math.sqrt(2 * cfg.num_hidden_layers)
    return 0.02


def init_params(cfg: Config, seed: int, dtype=torch.float64) -> Dict[str, torch.Tensor]:
    """Initialization of docs/model.md: norm weights 1, the rest normal. The
    draws come from torch's seeded generator, not the project's own, so the
    values differ from the C++ init; fixtures store the parameters instead."""
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in parameter_shapes(cfg):
        if len(shape) == 1:
            value = torch.ones(shape, dtype=torch.float64)
        else:
            value = torch.randn(shape, generator=gen, dtype=torch.float64) * init_std(cfg, name)
        params[name] = value.to(dtype).requires_grad_(True)
    return params


# ---------------------------------------------------------------- layers

def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # v / sqrt(mean(v^2) + eps) * w   (w itself, not 1 + w)
    return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def silu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def activation(cfg: Config, x: torch.Tensor) -> torch.Tensor:
    return gelu_tanh(x) if cfg.hidden_act == "gelu_pytorch_tanh" else silu(x)


def rope_tables(cfg: Config, seq_len: int, dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of p * theta_i, theta_i = rope_theta^(-2i/D), shape [T, D/2].
    Computed in float64 and then rounded to `dtype`."""
    D = cfg.head_dim
    i = torch.arange(D // 2, dtype=torch.float64)
    theta = cfg.rope_theta ** (-2.0 * i / D)
    angle = torch.arange(seq_len, dtype=torch.float64)[:, None] * theta[None, :]
    return torch.cos(angle).to(dtype), torch.sin(angle).to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE on x [B, T, heads, D]:
    out[i] = x[i] cos - x[i + D/2] sin;  out[i + D/2] = x[i + D/2] cos + x[i] sin."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


def attention(cfg: Config, params: Dict[str, torch.Tensor], l: int, a: torch.Tensor,
              cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    B, T, _ = a.shape
    Hq, Hkv, D = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    p = f"model.layers.{l}.self_attn."
    q = (a @ params[p + "q_proj.weight"].T).view(B, T, Hq, D)
    k = (a @ params[p + "k_proj.weight"].T).view(B, T, Hkv, D)
    v = (a @ params[p + "v_proj.weight"].T).view(B, T, Hkv, D)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    # Query head n uses kv head n / (Hq / Hkv).
    group = Hq // Hkv
    k = k.repeat_interleave(group, dim=2)
    v = v.repeat_interleave(group, dim=2)
    s = torch.einsum("bihd,bjhd->bhij", q, k) * cfg.attn_output_multiplier
    if cfg.softcap > 0:
        s = cfg.softcap * torch.tanh(s / cfg.softcap)
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    s = s.masked_fill(causal, float("-inf"))
    probs = torch.softmax(s, dim=-1)
    o = torch.einsum("bhij,bjhd->bihd", probs, v).reshape(B, T, Hq * D)
    return o @ params[p + "o_proj.weight"].T


def ffn(cfg: Config, params: Dict[str, torch.Tensor], l: int, f: torch.Tensor) -> torch.Tensor:
    """The dense gated FFN of a non-MoE layer."""
    p = f"model.layers.{l}.mlp."
    g = activation(cfg, f @ params[p + "gate_proj.weight"].T) * (f @ params[p + "up_proj.weight"].T)
    return g @ params[p + "down_proj.weight"].T


@dataclass
class MoeLayerStats:
    """What one MoE layer reports for its N tokens (n = b * T + t)."""
    layer: int
    aux: torch.Tensor          # scalar: E * sum_e f_e * P_e (differentiable through P only)
    z: torch.Tensor            # scalar: mean_n logsumexp_e(r[n, :])^2
    experts: torch.Tensor      # int64 [N, k]: topk(n)_j, in slot order
    counts: torch.Tensor       # int64 [E]: assignments the router made to each expert (before capacity)
    kept: torch.Tensor         # bool [N, k]: the assignment survived capacity (all True when dropless)
    dropped: int               # assignments past capacity
    capacity: int              # per-expert capacity; N * k when dropless
    margin: torch.Tensor       # [N]: p_k - p_(k+1) of the sorted probabilities (inf when k = E)


def topk_experts(p: torch.Tensor, k: int) -> torch.Tensor:
    """The k experts with the largest p[n, :], in descending order, ties to
    the lower expert index. Written out with explicit ranks rather than
    torch.topk, whose order among equal values is unspecified:
    rank[n, e] = #{e' : p[n, e'] > p[n, e] or (p[n, e'] == p[n, e] and e' < e)},
    a permutation of 0..E-1 in every row; slot j holds the expert of rank j."""
    E = p.shape[-1]
    idx = torch.arange(E)
    other, this = p[:, None, :], p[:, :, None]                      # [N, e, e']
    ahead = (other > this) | ((other == this) & (idx[None, None, :] < idx[None, :, None]))
    rank = ahead.sum(dim=-1)                                         # [N, E]
    return torch.argsort(rank, dim=-1)[:, :k]


def expert_capacity(cfg: Config, N: int) -> int:
    """ceil(c * N * k / E), evaluated as ceil(c * (N * k) / E) in double (as
    src/model/moe.cc does); N * k (no limit) when capacity_factor is 0."""
    k, E = cfg.num_experts_per_tok, cfg.num_experts
    if cfg.capacity_factor <= 0:
        return N * k
    return int(math.ceil(cfg.capacity_factor * float(N * k) / E))


def moe_ffn(cfg: Config, params: Dict[str, torch.Tensor], l: int,
            f: torch.Tensor) -> Tuple[torch.Tensor, MoeLayerStats]:
    """docs/model.md "Mixture-of-Experts feed-forward" for f [N, H], the N
    tokens of the whole micro-batch in token order. Returns y [N, H] and the
    layer's router statistics and losses."""
    N, H = f.shape
    E, k = cfg.num_experts, cfg.num_experts_per_tok
    m = f"model.layers.{l}.block_sparse_moe."
    r = f @ params[m + "gate.weight"].T                              # [N, E], no bias
    p = torch.softmax(r, dim=-1)
    experts = topk_experts(p.detach(), k)                            # [N, k]
    w = p.gather(1, experts)                                         # Grok-1
    if cfg.router_renormalize:
        w = w / w.sum(dim=-1, keepdim=True)                          # Mixtral

    # Dispatch: each expert's assignments in token order (a token picks an
    # expert at most once), the first `capacity` of them kept.
    capacity = expert_capacity(cfg, N)
    kept = torch.zeros(N, k, dtype=torch.bool)
    slot_out = torch.zeros(N * k, H, dtype=f.dtype)                  # row n * k + j: w[n, j] * expert(f[n])
    for e in range(E):
        rows, slots = (experts == e).nonzero(as_tuple=True)          # sorted by token n
        rows, slots = rows[:capacity], slots[:capacity]
        kept[rows, slots] = True
        if rows.numel() == 0:
            continue
        x = f[rows]
        g = activation(cfg, x @ params[m + f"experts.{e}.w1.weight"].T) * (x @ params[m + f"experts.{e}.w3.weight"].T)
        out = g @ params[m + f"experts.{e}.w2.weight"].T
        slot_out = slot_out.index_put((rows * k + slots,), out * w[rows, slots][:, None])
    slot_out = slot_out.view(N, k, H)
    y = slot_out[:, 0]
    for j in range(1, k):                                            # slot order j = 0..k-1
        y = y + slot_out[:, j]

    # Auxiliary losses. f_e counts the router's assignments (before capacity)
    # and is a constant for autograd; P_e carries the gradient.
    counts = torch.bincount(experts.reshape(-1), minlength=E)
    frac = counts.to(p.dtype) / (N * k)
    aux = E * (frac * p.mean(dim=0)).sum()
    z = torch.logsumexp(r, dim=-1).pow(2).mean()

    ordered = torch.sort(p.detach(), dim=-1, descending=True).values
    margin = ordered[:, k - 1] - ordered[:, k] if k < E else torch.full((N,), math.inf, dtype=p.dtype)
    stats = MoeLayerStats(layer=l, aux=aux, z=z, experts=experts, counts=counts, kept=kept,
                          dropped=int((~kept).sum()), capacity=capacity, margin=margin)
    return y, stats


def forward_with_router(cfg: Config, params: Dict[str, torch.Tensor],
                        tokens: torch.Tensor) -> Tuple[torch.Tensor, List[MoeLayerStats]]:
    """Logits [B, T, V] (after the output multiplier) for int64 tokens [B, T],
    and the statistics of each MoE layer in layer order (empty when dense)."""
    eps = cfg.rms_norm_eps
    E = params["model.embed_tokens.weight"]
    B, T = tokens.shape
    cos, sin = rope_tables(cfg, T, E.dtype)
    h = E[tokens] * cfg.embedding_multiplier_scale
    moe_stats = []
    for l in range(cfg.num_hidden_layers):
        p = f"model.layers.{l}."
        a = rmsnorm(h, params[p + "input_layernorm.weight"], eps)
        o = attention(cfg, params, l, a, cos, sin)
        if cfg.sandwich_norm:
            o = rmsnorm(o, params[p + "post_attention_layernorm.weight"], eps)
        h = h + o
        ffn_in = "pre_feedforward_layernorm" if cfg.sandwich_norm else "post_attention_layernorm"
        f = rmsnorm(h, params[p + ffn_in + ".weight"], eps)
        if cfg.is_moe_layer(l):
            # All B * T positions of the micro-batch route, in token order
            # n = b * T + t (positions with an ignored target too).
            y, stats = moe_ffn(cfg, params, l, f.reshape(B * T, -1))
            y = y.view(B, T, -1)
            moe_stats.append(stats)
        else:
            y = ffn(cfg, params, l, f)
        if cfg.sandwich_norm:
            y = rmsnorm(y, params[p + "post_feedforward_layernorm.weight"], eps)
        h = h + y
    w_out = E if cfg.tie_word_embeddings else params["lm_head.weight"]
    logits = (rmsnorm(h, params["model.norm.weight"], eps) @ w_out.T) * cfg.output_multiplier_scale
    return logits, moe_stats


def forward(cfg: Config, params: Dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """Logits [B, T, V] (after the output multiplier) for int64 tokens [B, T]."""
    return forward_with_router(cfg, params, tokens)[0]


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the positions whose target is not IGNORE_INDEX, over the whole batch."""
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, V), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="mean")


@dataclass
class LossParts:
    total: torch.Tensor                # what is differentiated and optimized
    ce: torch.Tensor
    aux: Optional[torch.Tensor]        # mean over MoE layers; None when dense
    z: Optional[torch.Tensor]


def total_loss(cfg: Config, logits: torch.Tensor, targets: torch.Tensor,
               moe_stats: List[MoeLayerStats]) -> LossParts:
    """cross_entropy + router_aux_loss_coef * mean_layers(aux)
    + router_z_loss_coef * mean_layers(z); the cross-entropy alone (the very
    same tensor) when there is no MoE layer."""
    ce = cross_entropy_loss(logits, targets)
    if not moe_stats:
        return LossParts(total=ce, ce=ce, aux=None, z=None)
    aux = torch.stack([s.aux for s in moe_stats]).mean()
    z = torch.stack([s.z for s in moe_stats]).mean()
    total = ce + cfg.router_aux_loss_coef * aux + cfg.router_z_loss_coef * z
    return LossParts(total=total, ce=ce, aux=aux, z=z)


def loss(cfg: Config, params: Dict[str, torch.Tensor], tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The training loss of docs/model.md (the cross-entropy for a dense model)."""
    logits, moe_stats = forward_with_router(cfg, params, tokens)
    return total_loss(cfg, logits, targets, moe_stats).total


# ---------------------------------------------------------------- optimizer

def zero_missing_grads(params: Dict[str, torch.Tensor]) -> None:
    """After backward: an expert that no token reached (or whose assignments
    were all dropped) is not in the graph and gets grad None, which AdamW
    would skip entirely (no decay, no moment update). Its gradient is zero,
    and the C++ trainer treats it as zero, so make it an explicit zero."""
    for p in params.values():
        if p.grad is None:
            p.grad = torch.zeros_like(p)


def make_adamw(params: Dict[str, torch.Tensor], lr: float, betas: Tuple[float, float], eps: float,
               weight_decay: float) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (>= 2 dims) and none on 1-D norm weights."""
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=betas, eps=eps)
