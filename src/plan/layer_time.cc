#include "plan/layer_time.h"

#include <algorithm>

#include "plan/collectives.h"
#include "plan/kernel_model.h"

namespace sc::plan {

LayerGemms layer_forward_gemms(const GpuSpec& gpu, const PlanModel& model, const MicroBatchDims& d) {
  const ModelConfig& c = model.config;
  const double T = d.tokens, h = d.hidden, hq_d = d.query_width, kv_d = d.kv_width, F = d.mlp_width;
  const double tp = d.tp, ep = d.ep, E = d.experts;
  const double mlp_in_width = model.gated_mlp ? 2 * F : F;
  const double attention_gemm = gemm_time_s(gpu, T, (hq_d + 2 * kv_d) / tp, h) + gemm_time_s(gpu, T, h, hq_d / tp);
  LayerGemms g;
  g.dense_s = attention_gemm + gemm_time_s(gpu, T, mlp_in_width / tp, h) + gemm_time_s(gpu, T, h, F / tp);
  if (c.is_moe()) {
    // Each GPU holds E/ep experts; in expectation T*k*ep/E tokens reach each.
    const double tokens_per_expert = T * d.experts_per_token * ep / E;
    g.moe_s = attention_gemm + gemm_time_s(gpu, T, E, h) +
              (E / ep) * (gemm_time_s(gpu, tokens_per_expert, mlp_in_width / tp, h) +
                          gemm_time_s(gpu, tokens_per_expert, h, F / tp));
  }
  return g;
}

// Fused kernels skip the masked half of a causal s x s (each of T queries
// sees s/2 keys on average); FlashAttention's backward does 2.5x the
// forward's matmul work (FA2's own accounting) and recomputes the scores.
AttentionCore attention_core(const GpuSpec& gpu, const PlanModel& model, const SoftwareStack& sw,
                             const MicroBatchDims& d) {
  const ModelConfig& c = model.config;
  const double T = d.tokens, s = d.seq_len, b = d.micro_batch, cp = d.cp;
  const double heads_local = static_cast<double>(c.num_attention_heads) / d.tp;
  AttentionCore a;
  if (model.flash_attention) {
    const double fwd_flops = 4 * T * (s / 2) * heads_local * static_cast<double>(c.head_dim);
    const double efficiency = sw.flash_attention_version >= 3 && gpu.fa3_efficiency > 0 ? gpu.fa3_efficiency
                                                                                        : gpu.fa2_efficiency;
    const double rate = gpu.bf16_flops * efficiency;
    a.forward_s = fwd_flops / rate;
    a.backward_s = 2.5 * fwd_flops / rate;
  } else {
    // Unfused (2021): batched QK^T and PV over the full s x s, then a fused
    // scale-mask-softmax and dropout streaming the scores through HBM
    // (about 11 bytes per score forward, 15 backward).
    const double batch_heads = b * heads_local;
    const double bmm = 2 * gemm_time_s(gpu, s * batch_heads / cp, s, static_cast<double>(c.head_dim));
    const double scores = batch_heads * (s / cp) * s;
    a.forward_s = bmm + stream_time_s(gpu, scores * (model.dropout ? 11 : 6));
    a.backward_s = 2 * bmm + stream_time_s(gpu, scores * (model.dropout ? 15 : 8));
  }
  return a;
}

// Bytes per token, forward: norms (read + write), the two residual adds
// (read 2, write 1; bias and dropout fused into them in Megatron) and 1-byte
// dropout masks: h wide, split over tp only with sequence parallelism. MLP
// activation and rotary: split by tp.
ElementwiseWork elementwise_work(const GpuSpec& gpu, const PlanModel& model, Recompute recompute,
                                 const MicroBatchDims& d) {
  const ModelConfig& c = model.config;
  const double T = d.tokens, h = d.hidden, F = d.mlp_width, tp = d.tp, sp_split = d.sp_split;
  const double k_active = d.experts_per_token;
  const int64_t norms = c.sandwich_norm ? 4 : 2;
  const double h_bytes = (kBf16 * (2.0 * norms * h + 6 * h) + (model.dropout ? 2 * h : 0)) / sp_split;
  const double mlp_act_bytes = kBf16 * (model.gated_mlp ? 3 * F : 2 * F) * k_active / tp;
  const double rope_bytes = model.rotary ? kBf16 * 2 * (d.query_width + d.kv_width) / tp : 0;
  ElementwiseWork w;
  w.forward_s = stream_time_s(gpu, T * (h_bytes + mlp_act_bytes + rope_bytes)) + 12 * kKernelOverheadS;
  // Selective recompute with fused attention redoes the norms and the gated
  // product in the backward: their forward traffic once more.
  if (recompute == Recompute::kSelective && model.flash_attention)
    w.selective_recompute_s = stream_time_s(
        gpu, T * (kBf16 * 2 * 2 * h / sp_split + (model.gated_mlp ? kBf16 * 3 * F * k_active / tp : 0)));
  return w;
}

LayerCollectives layer_collectives(const ClusterSpec& cluster, const PlanModel& model, const CommGroups& groups,
                                   const MicroBatchDims& d) {
  const double T = d.tokens, h = d.hidden, tp = d.tp, cp = d.cp;
  const double kv_heads = static_cast<double>(model.config.num_key_value_heads);
  LayerCollectives one;
  one.tp_s = tp > 1 ? all_reduce_time_s(cluster, groups.tp, T * h * kBf16) : 0;
  const double ep_bytes = T * d.experts_per_token * h * kBf16 / tp;  // tokens this GPU sends (SP: 1/tp of them)
  one.ep_s = all_to_all_time_s(cluster, groups.ep, ep_bytes);
  // With more TP ranks than K/V heads, each rank gathers a whole head's K/V.
  const double cp_bytes = (cp - 1) * 2 * T * (d.kv_width / tp) * kBf16 * (tp > kv_heads ? tp / kv_heads : 1);
  one.cp_s = cp > 1 ? all_gather_time_s(cluster, groups.cp, cp_bytes / (cp - 1) * cp) : 0;
  return one;
}

// A kernel reads the fresh bf16 gradient and reads and writes the main one.
double grad_accumulation_s(const GpuSpec& gpu, const SoftwareStack& sw, double params) {
  return sw.fused_grad_accumulation ? 0.0 : stream_time_s(gpu, params * (kBf16 + 2 * sw.main_grad_bytes));
}

namespace {

// Forward + backward (+ recompute) of every layer, averaged. TP: with SP 2
// all-gathers + 2 reduce-scatters forward, as many backward (2 all-reduces
// each way without SP: the same bytes), 2 more when the forward is
// recomputed; not overlapped with compute. CP's K/V gathers hide behind the
// attention they feed.
MicroBatchParts average_layer(const PlanModel& model, const ClusterSpec& cluster, const Layout& layout,
                              const MicroBatchDims& d, const CommGroups& groups, const ParameterShare& params) {
  const ModelConfig& c = model.config;
  const GpuSpec& gpu = cluster.gpu;
  const bool full = layout.recompute == Recompute::kFull;
  const bool recompute_attention = full || (layout.recompute == Recompute::kSelective && !model.flash_attention);
  const LayerGemms gemms = layer_forward_gemms(gpu, model, d);
  const AttentionCore attention = attention_core(gpu, model, layout.software, d);
  const ElementwiseWork elementwise = elementwise_work(gpu, model, layout.recompute, d);
  const LayerCollectives one = layer_collectives(cluster, model, groups, d);
  const double grad_accum = grad_accumulation_s(gpu, layout.software, params.per_layer);
  MicroBatchParts sum;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const bool moe = c.is_moe_layer(l);
    const double g = moe ? gemms.moe_s : gemms.dense_s;
    MicroBatchParts p;
    p.gemm = 3 * g + (full ? g : 0);  // backward = 2x forward
    p.attention = attention.forward_s + attention.backward_s + (recompute_attention ? attention.forward_s : 0);
    p.elementwise = 3 * elementwise.forward_s + (full ? elementwise.forward_s : elementwise.selective_recompute_s);
    p.tp = (full ? 6 : 4) * one.tp_s;
    p.ep = moe ? (full ? 6 : 4) * one.ep_s : 0;
    p.cp = std::max(0.0, 3 * one.cp_s - (attention.forward_s + attention.backward_s));
    p.grad_accum = grad_accum;
    sum = sum + p;
  }
  return sum * (1 / d.layers);
}

}  // namespace

StageWork stage_work(const PlanModel& model, const ClusterSpec& cluster, const Layout& layout,
                     const MicroBatchDims& d, const CommGroups& groups, const ParameterShare& params,
                     double slowest_gpu_factor) {
  const GpuSpec& gpu = cluster.gpu;
  const double T = d.tokens, h = d.hidden, V = d.vocab, tp = d.tp;
  const double slow = 1 / slowest_gpu_factor;
  auto slowed = [slow](MicroBatchParts p) {
    p.gemm *= slow, p.attention *= slow, p.elementwise *= slow, p.grad_accum *= slow;
    return p;
  };
  StageWork w;
  w.layer = slowed(average_layer(model, cluster, layout, d, groups, params));
  // Output layer and loss: logits GEMM forward + backward, fp32 softmax
  // streaming. Embedding: its dense weight gradient.
  w.head.gemm = 3 * gemm_time_s(gpu, T, V / tp, h);
  w.head.elementwise = stream_time_s(gpu, T * V / tp * 4 * 3);
  w.head.grad_accum = grad_accumulation_s(gpu, layout.software, params.vocab);
  w.head = slowed(w.head);
  w.embedding.elementwise = stream_time_s(gpu, params.vocab * kBf16 + T * h * kBf16 * 2);
  w.embedding.grad_accum = grad_accumulation_s(gpu, layout.software, params.vocab);
  w.embedding = slowed(w.embedding);
  return w;
}

}  // namespace sc::plan
