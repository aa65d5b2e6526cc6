#include "model/layer.h"

#include <algorithm>

#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "model/model.h"

namespace sc {

void plan_layer_activations(const ModelConfig& c, size_t N, bool dense_ffn, bool moe_ffn, bool keep_lse,
                            LayerActivations* a, ActivationPlan* plan) {
  const size_t H = c.hidden_size, F = c.intermediate_size;
  const size_t QD = c.num_attention_heads * c.head_dim, KD = c.num_key_value_heads * c.head_dim;
  const size_t E = static_cast<size_t>(std::max<int64_t>(c.num_experts, 1));
  const size_t K = static_cast<size_t>(std::max<int64_t>(c.num_experts_per_tok, 1));
  auto& p = plan->floats;
  p.insert(p.end(), {{&a->x_in, N * H}, {&a->attn_normed, N * H}, {&a->attn_rstd, N}, {&a->q, N * QD},
                     {&a->k, N * KD}, {&a->v, N * KD}, {&a->attn_out, N * QD}});
  a->lse = nullptr;
  if (keep_lse) p.push_back({&a->lse, N * c.num_attention_heads});
  p.insert(p.end(), {{&a->h_mid, N * H}, {&a->ffn_normed, N * H}, {&a->ffn_rstd, N}});
  a->o = a->o_rstd = a->y = a->y_rstd = nullptr;
  if (c.sandwich_norm) p.insert(p.end(), {{&a->o, N * H}, {&a->o_rstd, N}, {&a->y_rstd, N}});
  if (c.sandwich_norm || moe_ffn) p.push_back({&a->y, N * H});
  a->moe = {};
  if (moe_ffn) {
    MoeActivations& m = a->moe;
    p.insert(p.end(), {{&m.router_logits, N * E}, {&m.probs, N * E}, {&m.logsumexp, N}, {&m.weights, N * K},
                       {&m.x_sorted, N * K * H}, {&m.gate, N * K * F}, {&m.up, N * K * F}, {&m.act, N * K * F},
                       {&m.y_sorted, N * K * H}});
    plan->ints.insert(plan->ints.end(),
                      {{&m.experts, N * K}, {&m.rows, N * K}, {&m.row_tokens, N * K}, {&m.offsets, E + 1}});
  }
  a->gate = a->up = a->act = nullptr;
  if (dense_ffn) p.insert(p.end(), {{&a->gate, N * F}, {&a->up, N * F}, {&a->act, N * F}});
}

Status embed_forward(ThreadPool& pool, const ModelConfig& c, const ModelWeights& w, float* x,
                     const uint32_t* tokens, size_t N) {
  return embedding_forward(pool, x, tokens, w.embedding, N, c.vocab_size, c.hidden_size,
                           static_cast<float>(c.embedding_multiplier_scale));
}

void layer_forward(ThreadPool& pool, const ModelConfig& c, const LayerWeights& w, const LayerMatrices& m,
                   const LayerActivations& a, float* x_out, size_t N, const LayerAttention& at,
                   const MoeShape& moe_shape, GatedActivation act, MoeStats* moe_stats) {
  const size_t H = c.hidden_size, F = c.intermediate_size;
  const size_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, D = c.head_dim;
  const size_t QD = Hq * D, KD = Hkv * D;
  const float eps = static_cast<float>(c.rms_norm_eps);
  // Attention block.
  rmsnorm_forward(pool, a.attn_normed, a.attn_rstd, a.x_in, w.attn_norm, N, H, eps);
  linear_forward(pool, a.q, a.attn_normed, m.wq, N, QD, H, false);
  linear_forward(pool, a.k, a.attn_normed, m.wk, N, KD, H, false);
  linear_forward(pool, a.v, a.attn_normed, m.wv, N, KD, H, false);
  if (at.k_cache == nullptr) {
    rope_forward(pool, a.q, at.rope_cos, at.rope_sin, N, at.shape.T, Hq, D);
    rope_forward(pool, a.k, at.rope_cos, at.rope_sin, N, at.shape.T, Hkv, D);
    attention_forward(pool, a.attn_out, a.lse, a.q, a.k, a.v, at.shape, at.scratch);
  } else {
    rope_forward_at(pool, a.q, at.rope_cos, at.rope_sin, at.positions, N, Hq, D);
    rope_forward_at(pool, a.k, at.rope_cos, at.rope_sin, at.positions, N, Hkv, D);
    attention_cache_store(at.k_cache, at.v_cache, a.k, a.v, at.shape, at.segments, at.num_segments);
    attention_forward_cached(pool, a.attn_out, a.q, at.k_cache, at.v_cache, at.shape, at.segments,
                             at.num_segments, at.scratch);
  }
  if (c.sandwich_norm) {
    linear_forward(pool, a.o, a.attn_out, m.wo, N, H, QD, false);
    rmsnorm_forward(pool, a.h_mid, a.o_rstd, a.o, w.attn_out_norm, N, H, eps);
    add_inplace(pool, a.h_mid, a.x_in, N * H);
  } else {
    copy(pool, a.h_mid, a.x_in, N * H);
    linear_forward(pool, a.h_mid, a.attn_out, m.wo, N, H, QD, true);
  }
  // Feed-forward block.
  rmsnorm_forward(pool, a.ffn_normed, a.ffn_rstd, a.h_mid, w.ffn_norm, N, H, eps);
  if (w.is_moe) {
    moe_forward(pool, moe_shape, w.moe, m.experts, a.ffn_normed, a.y, a.moe, moe_stats);
  } else {
    linear_forward(pool, a.gate, a.ffn_normed, m.w_gate, N, F, H, false);
    linear_forward(pool, a.up, a.ffn_normed, m.w_up, N, F, H, false);
    gated_activation_forward(pool, a.act, a.gate, a.up, N * F, act);
  }
  if (c.sandwich_norm) {
    if (!w.is_moe) linear_forward(pool, a.y, a.act, m.w_down, N, H, F, false);
    rmsnorm_forward(pool, x_out, a.y_rstd, a.y, w.ffn_out_norm, N, H, eps);
    add_inplace(pool, x_out, a.h_mid, N * H);
  } else if (w.is_moe) {
    add(pool, x_out, a.h_mid, a.y, N * H);
  } else {
    copy(pool, x_out, a.h_mid, N * H);
    linear_forward(pool, x_out, a.act, m.w_down, N, H, F, true);
  }
}

void head_forward(ThreadPool& pool, const ModelConfig& c, const ModelWeights& w, const WeightMatrix& output,
                  float* logits, float* normed, float* rstd, const float* x, size_t N) {
  const size_t H = c.hidden_size, V = c.vocab_size;
  rmsnorm_forward(pool, normed, rstd, x, w.final_norm, N, H, static_cast<float>(c.rms_norm_eps));
  linear_forward(pool, logits, normed, output, N, V, H, false);
}

}  // namespace sc
