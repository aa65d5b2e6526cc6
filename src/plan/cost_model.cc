#include "plan/cost_model.h"

#include <algorithm>
#include <cmath>

#include "model/counts.h"

namespace sc::plan {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kBf16 = 2;                 // bytes per activation / weight element
constexpr double kKernelOverheadS = 3e-6;   // launch + tail per kernel (CUDA graphs hide launches, not tails)
constexpr double kHbmEfficiency = 0.8;      // achieved / datasheet HBM bandwidth for streaming kernels
constexpr double kFixedBuffersBytes = 2 * kGiB;  // CUDA context, cuBLAS workspace, NCCL channels
constexpr double kFragmentation = 0.10;     // caching allocator slack on activations
// Mixed-precision Adam (ZeRO paper): bf16 weights 2 + bf16 grads 2 + fp32
// master weights, m and v 12 bytes per parameter.
constexpr double kWeightBytes = 2, kGradBytes = 2, kOptimizerBytes = 12;
// A checkpoint holds the bf16 weights and the fp32 optimizer state.
constexpr double kCheckpointBytesPerParam = 2 + 12;

// Time of one GEMM on one GPU: roofline (peak x achievable ceiling vs HBM
// traffic) with wave quantization of 128 x 256 output tiles over the SMs.
double gemm_time(const GpuSpec& gpu, double m, double n, double k) {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  const double flops = 2 * m * n * k;
  const double tiles = std::ceil(m / 128) * std::ceil(n / 256);
  const double waves = std::ceil(tiles / gpu.sm_count);
  const double wave_efficiency = tiles / (waves * gpu.sm_count);
  const double compute_s = flops / (gpu.bf16_flops * gpu.max_gemm_efficiency * wave_efficiency);
  const double memory_s = kBf16 * (m * k + k * n + m * n) / (gpu.hbm_bytes_per_s * kHbmEfficiency);
  return std::max(compute_s, memory_s) + kKernelOverheadS;
}

double stream_time(const GpuSpec& gpu, double bytes) { return bytes / (gpu.hbm_bytes_per_s * kHbmEfficiency); }

// A group of `n` ranks, `in_node` of which share a node (NVLink), spread
// over `span_gpus` consecutive GPUs of the fabric.
struct Group {
  int64_t n = 1;
  int64_t in_node = 1;
  int64_t span_gpus = 1;
};

struct Links {
  double nvlink_bytes_per_s, nvlink_latency_s;
  double scale_out_bytes_per_s, scale_out_latency_s;
};

Links links_for(const ClusterSpec& c, const Group& g) {
  Links l;
  l.nvlink_bytes_per_s = c.gpu.nvlink_bytes_per_s * c.nvlink_efficiency;
  l.nvlink_latency_s = c.nvlink_latency_s;
  double bw = c.scale_out_bytes_per_s * c.scale_out_efficiency;
  if (c.pod_gpus > 0 && g.span_gpus > c.pod_gpus) bw /= c.oversubscription;
  l.scale_out_bytes_per_s = bw;
  // A hop up and down each tier the group spans: leaf only inside a rack-
  // sized span, else every tier.
  const int64_t tiers = g.span_gpus <= c.gpus_per_rack ? 1 : c.fabric_tiers;
  l.scale_out_latency_s = 2.0 * tiers * c.hop_latency_s + 5e-6;  // + NIC/NCCL software per step
  return l;
}

// Ring all-reduce of S bytes per rank, hierarchical when the group has
// ranks inside a node: reduce-scatter on NVLink, all-reduce of S/in_node
// across nodes on each GPU's own NIC (rail-optimized), all-gather on NVLink.
// Bus-bandwidth volumes as nccl-tests: 2(n-1)/n S for all-reduce.
double all_reduce_time(const ClusterSpec& c, const Group& g, double bytes) {
  if (g.n <= 1 || bytes <= 0) return 0;
  const Links l = links_for(c, g);
  const double a = static_cast<double>(std::min(g.in_node, g.n));
  const double b = static_cast<double>(g.n) / a;  // nodes in the group
  double t = 0;
  if (a > 1) t += 2 * (a - 1) / a * bytes / l.nvlink_bytes_per_s + 2 * (a - 1) * l.nvlink_latency_s;
  if (b > 1) t += 2 * (b - 1) / b * (bytes / a) / l.scale_out_bytes_per_s + 2 * (b - 1) * l.scale_out_latency_s;
  return t;
}

// Reduce-scatter followed by all-gather moves what one all-reduce moves.
double reduce_scatter_time(const ClusterSpec& c, const Group& g, double bytes) { return all_reduce_time(c, g, bytes) / 2; }

// All-to-all of S bytes per rank: (n-1)/n of it leaves the rank; the part
// for ranks outside the node goes over the NIC.
double all_to_all_time(const ClusterSpec& c, const Group& g, double bytes) {
  if (g.n <= 1 || bytes <= 0) return 0;
  const Links l = links_for(c, g);
  const double n = static_cast<double>(g.n), a = static_cast<double>(std::min(g.in_node, g.n));
  const double inside = bytes * (a - 1) / n, outside = bytes * (n - a) / n;
  return std::max(inside / l.nvlink_bytes_per_s, outside / l.scale_out_bytes_per_s) +
         (a < n ? (n - 1) * l.scale_out_latency_s / 4 : (n - 1) * l.nvlink_latency_s);
}

double p2p_time(const ClusterSpec& c, bool inside_node, double bytes) {
  Group g{2, inside_node ? 2 : 1, inside_node ? 2 : c.gpus_per_node * 2};
  const Links l = links_for(c, g);
  return inside_node ? bytes / l.nvlink_bytes_per_s + l.nvlink_latency_s
                     : bytes / l.scale_out_bytes_per_s + l.scale_out_latency_s;
}

// Ranks are ordered tp (innermost), cp, ep-within-dp, pp, dp (outermost
// after ep), as Megatron-LM orders them.
int64_t ranks_in_node(const ClusterSpec& c, int64_t stride, int64_t n) {
  if (stride >= c.gpus_per_node) return 1;
  return std::min(n, std::max<int64_t>(1, c.gpus_per_node / stride));
}

double daly_interval(double delta_s, double mtbf_s) {
  if (delta_s >= 2 * mtbf_s) return mtbf_s;
  const double x = delta_s / (2 * mtbf_s);
  return std::sqrt(2 * delta_s * mtbf_s) * (1 + std::sqrt(x) / 3 + x / 9) - delta_s;
}

}  // namespace

std::string recompute_name(Recompute recompute) {
  switch (recompute) {
    case Recompute::kNone: return "none";
    case Recompute::kSelective: return "selective";
    case Recompute::kFull: return "full";
  }
  return "?";
}

Result<Recompute> parse_recompute(const std::string& name) {
  if (name == "none") return Recompute::kNone;
  if (name == "selective") return Recompute::kSelective;
  if (name == "full") return Recompute::kFull;
  return Status::invalid("--recompute must be none, selective or full (got '{}')", name);
}

Status validate_layout(const PlanModel& model, const ClusterSpec& cluster, const RunSpec& run, Layout* layout) {
  const ModelConfig& c = model.config;
  auto positive = [](const char* flag, int64_t v) -> Status {
    if (v <= 0) return Status::invalid("{} must be positive (got {})", flag, v);
    return Status();
  };
  SC_RETURN_IF_ERROR(positive("--gpus", cluster.num_gpus));
  SC_RETURN_IF_ERROR(positive("--tp", layout->tp));
  SC_RETURN_IF_ERROR(positive("--pp", layout->pp));
  SC_RETURN_IF_ERROR(positive("--vp", layout->vp));
  SC_RETURN_IF_ERROR(positive("--ep", layout->ep));
  SC_RETURN_IF_ERROR(positive("--cp", layout->cp));
  SC_RETURN_IF_ERROR(positive("--micro-batch", layout->micro_batch));
  SC_RETURN_IF_ERROR(positive("--seq-len", run.seq_len));
  SC_RETURN_IF_ERROR(positive("--global-batch-tokens", run.global_batch_tokens));
  if (!(run.train_tokens > 0)) return Status::invalid("--train-tokens must be positive (got {})", run.train_tokens);
  if (layout->dp < 0) return Status::invalid("--dp must be positive (got {})", layout->dp);
  if (layout->zero < 0 || layout->zero > 3) return Status::invalid("--zero must be 0, 1, 2 or 3 (got {})", layout->zero);
  const int64_t model_parallel = layout->tp * layout->pp * layout->cp;
  if (run.global_batch_tokens % run.seq_len != 0)
    return Status::invalid("--global-batch-tokens {} is not a multiple of --seq-len {}", run.global_batch_tokens,
                           run.seq_len);
  const int64_t sequences = run.global_batch_tokens / run.seq_len;
  const bool derived_dp = layout->dp == 0;
  if (derived_dp) {
    // The largest data-parallel degree the GPUs allow that also divides the
    // batch; GPUs left over stay idle (spares) and are reported.
    if (cluster.num_gpus < model_parallel)
      return Status::invalid("--tp {} x --pp {} x --cp {} = {} is more than --gpus {}", layout->tp, layout->pp,
                             layout->cp, model_parallel, cluster.num_gpus);
    for (int64_t d = cluster.num_gpus / model_parallel; d >= 1; --d) {
      if (sequences % (d * layout->micro_batch) == 0) {
        layout->dp = d;
        break;
      }
    }
    if (layout->dp == 0)
      return Status::invalid("--micro-batch {} does not divide the {} sequences of --global-batch-tokens {}",
                             layout->micro_batch, sequences, run.global_batch_tokens);
  } else if (model_parallel * layout->dp != cluster.num_gpus) {
    return Status::invalid("--tp {} x --pp {} x --dp {} x --cp {} = {} is not --gpus {}", layout->tp, layout->pp,
                           layout->dp, layout->cp, model_parallel * layout->dp, cluster.num_gpus);
  }
  if (c.num_attention_heads % layout->tp != 0)
    return Status::invalid("--tp {} does not divide num_attention_heads {}", layout->tp, c.num_attention_heads);
  if (c.num_key_value_heads % layout->tp != 0 && layout->tp % c.num_key_value_heads != 0)
    return Status::invalid("--tp {} and num_key_value_heads {}: neither divides the other", layout->tp,
                           c.num_key_value_heads);
  if (model.mlp_width % layout->tp != 0)
    return Status::invalid("--tp {} does not divide the MLP width {}", layout->tp, model.mlp_width);
  if (layout->pp * layout->vp > c.num_hidden_layers)
    return Status::invalid("--pp {} x --vp {} is more stages than num_hidden_layers {}", layout->pp, layout->vp,
                           c.num_hidden_layers);
  if (layout->ep > 1 && !c.is_moe())
    return Status::invalid("--ep {} needs a mixture-of-experts model ({} is dense)", layout->ep, model.name);
  if (c.is_moe() && c.num_experts % layout->ep != 0)
    return Status::invalid("--ep {} does not divide num_experts {}", layout->ep, c.num_experts);
  if ((layout->dp * layout->cp) % layout->ep != 0)
    return Status::invalid("--ep {} does not divide --dp {} x --cp {}", layout->ep, layout->dp, layout->cp);
  if (run.seq_len % (2 * layout->cp) != 0 && layout->cp > 1)
    return Status::invalid("--cp {}: --seq-len {} must split into 2 x cp equal chunks", layout->cp, run.seq_len);
  if (sequences % (layout->dp * layout->micro_batch) != 0)
    return Status::invalid("--global-batch-tokens {} ({} sequences) is not a multiple of --dp {} x --micro-batch {}",
                           run.global_batch_tokens, sequences, layout->dp, layout->micro_batch);
  return Status();
}

Result<Plan> plan_run(const PlanModel& model, const ClusterSpec& cluster, Layout layout, const RunSpec& run) {
  SC_RETURN_IF_ERROR(validate_layout(model, cluster, run, &layout));
  const ModelConfig& c = model.config;
  const GpuSpec& gpu = cluster.gpu;
  const ParameterCounts counts = count_parameters(c);
  const double tp = layout.tp, pp = layout.pp, vp = layout.vp, cp = layout.cp, ep = layout.ep, dp = layout.dp;
  const double L = static_cast<double>(c.num_hidden_layers), h = static_cast<double>(c.hidden_size);
  const double hq_d = static_cast<double>(c.num_attention_heads * c.head_dim);
  const double kv_d = static_cast<double>(c.num_key_value_heads * c.head_dim);
  const double F = static_cast<double>(model.mlp_width), V = static_cast<double>(c.vocab_size);
  const double s = static_cast<double>(run.seq_len), b = static_cast<double>(layout.micro_batch);
  const double k_active = c.is_moe() ? static_cast<double>(c.num_experts_per_tok) : 1;
  const double E = c.is_moe() ? static_cast<double>(c.num_experts) : 1;
  const double T = b * s / cp;  // tokens per micro-batch on this GPU's TP group
  const double m = static_cast<double>(run.global_batch_tokens / run.seq_len) / (dp * b);
  const double stage_layers = std::ceil(L / (pp * vp)) * vp;  // the deepest stage sets the pace
  const bool full = layout.recompute == Recompute::kFull;

  Plan plan;
  plan.model = model.name;
  plan.cluster = cluster.name;
  plan.gpu = gpu.name;
  plan.num_gpus = layout.tp * layout.pp * layout.cp * layout.dp;
  plan.idle_gpus = cluster.num_gpus - plan.num_gpus;
  plan.layout = layout;
  plan.run = run;
  plan.micro_batches = static_cast<int64_t>(m);
  plan.total_parameters = static_cast<double>(counts.total);
  plan.active_parameters = static_cast<double>(counts.active);
  plan.model_flops_per_token = static_cast<double>(model_flops_per_token(c, run.seq_len));

  // ---- Communication groups (rank order tp, cp, dp with ep inside, pp) ----
  const int64_t gpn = cluster.gpus_per_node;
  const Group tp_group{layout.tp, std::min<int64_t>(layout.tp, gpn), layout.tp};
  const Group cp_group{layout.cp, ranks_in_node(cluster, layout.tp, layout.cp), layout.tp * layout.cp};
  const Group ep_group{layout.ep, ranks_in_node(cluster, layout.tp * layout.cp, layout.ep),
                       layout.tp * layout.cp * layout.ep};
  const int64_t dense_dp = layout.dp * layout.cp;  // ZeRO / gradient group of dense weights
  const Group dp_group{dense_dp, ranks_in_node(cluster, layout.tp, dense_dp), plan.num_gpus / layout.pp};
  const int64_t expert_dp = dense_dp / layout.ep;
  const Group expert_dp_group{expert_dp, ranks_in_node(cluster, layout.tp * layout.ep, expert_dp),
                              plan.num_gpus / layout.pp};
  const bool pp_inside_node = layout.tp * layout.cp * layout.dp < gpn && layout.pp > 1;

  // ---- Per-layer forward time of one micro-batch on one GPU ----
  double dense_gemm = 0, moe_gemm = 0;
  const double mlp_in_width = model.gated_mlp ? 2 * F : F;
  dense_gemm += gemm_time(gpu, T, (hq_d + 2 * kv_d) / tp, h);  // QKV
  dense_gemm += gemm_time(gpu, T, h, hq_d / tp);               // output projection
  const double attention_gemm = dense_gemm;
  const double dense_mlp = gemm_time(gpu, T, mlp_in_width / tp, h) + gemm_time(gpu, T, h, F / tp);
  dense_gemm += dense_mlp;
  if (c.is_moe()) {
    // Each GPU holds E/ep experts; in expectation T*k*ep/E tokens reach each.
    const double tokens_per_expert = T * k_active * ep / E;
    const double local_experts = E / ep;
    moe_gemm = attention_gemm + gemm_time(gpu, T, E, h) +
               local_experts * (gemm_time(gpu, tokens_per_expert, mlp_in_width / tp, h) +
                                gemm_time(gpu, tokens_per_expert, h, F / tp));
  }
  // Attention core. Fused kernels skip the masked half of a causal s x s
  // (each of T queries sees s/2 keys on average); FlashAttention's backward
  // does 2.5x the forward's matmul work (FA2's own accounting).
  const double heads_local = static_cast<double>(c.num_attention_heads) / tp;
  double attention_fwd = 0, attention_bwd = 0;
  if (model.flash_attention) {
    const double fwd_flops = 4 * T * (s / 2) * heads_local * c.head_dim;
    const double rate = gpu.bf16_flops * gpu.attention_efficiency;
    attention_fwd = fwd_flops / rate;
    attention_bwd = 2.5 * fwd_flops / rate;
  } else {
    // Unfused (2021): batched QK^T and PV over the full s x s, then a fused
    // scale-mask-softmax and dropout streaming the scores through HBM
    // (about 11 bytes per score forward, 15 backward).
    const double batch_heads = b * heads_local;
    const double bmm = 2 * gemm_time(gpu, s * batch_heads / cp, s, static_cast<double>(c.head_dim));
    const double scores = batch_heads * (s / cp) * s;
    attention_fwd = bmm + stream_time(gpu, scores * (model.dropout ? 11 : 6));
    attention_bwd = 2 * bmm + stream_time(gpu, scores * (model.dropout ? 15 : 8));
  }
  // Bandwidth-bound elementwise work per token (bytes, forward): norms,
  // residual adds, rotary or bias, MLP activation, dropout. SP shards the
  // h-wide parts over tp.
  const int64_t norms = c.sandwich_norm ? 4 : 2;
  const double h_bytes = kBf16 * (2.0 * norms * h + 6 * h + (model.dropout ? 5 * h : 0)) / tp;
  const double mlp_act_bytes = kBf16 * (model.gated_mlp ? 3 * F : 2 * F) * k_active / tp;
  const double rope_bytes = kBf16 * 2 * (hq_d + kv_d) / tp;
  const double elementwise_fwd = stream_time(gpu, T * (h_bytes + mlp_act_bytes + rope_bytes)) + 12 * kKernelOverheadS;

  // Collectives per layer per micro-batch.
  const double tp_bytes = T * h * kBf16;  // the full activation each all-gather / reduce-scatter rebuilds
  const double tp_one = layout.tp > 1 ? all_reduce_time(cluster, tp_group, tp_bytes) : 0;
  const double ep_bytes = T * k_active * h * kBf16 / tp;  // tokens this GPU sends (SP: 1/tp of them)
  const double ep_one = all_to_all_time(cluster, ep_group, ep_bytes);
  const double cp_bytes = (cp - 1) * 2 * T * (kv_d / tp) * kBf16 * (tp > c.num_key_value_heads ? tp / c.num_key_value_heads : 1);
  const double cp_one = layout.cp > 1 ? (cp_bytes / links_for(cluster, cp_group).scale_out_bytes_per_s) : 0;

  // Sum over layers (dense and MoE layers differ), forward + backward
  // (backward = 2x forward GEMMs), + recomputation.
  double gemm = 0, attention = 0, elementwise = 0, tp_comm = 0, ep_comm = 0, cp_comm = 0;
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const bool moe = c.is_moe_layer(l);
    moe_layers += moe ? 1 : 0;
    const double g = moe ? moe_gemm : dense_gemm;
    const double recompute_gemm = full ? g : 0;
    const double recompute_attention = full || layout.recompute == Recompute::kSelective ? attention_fwd : 0;
    // FlashAttention recomputes scores inside its backward already: selective costs it nothing more.
    const double extra_attention = model.flash_attention && !full ? 0 : recompute_attention;
    gemm += 3 * g + recompute_gemm;
    attention += attention_fwd + attention_bwd + extra_attention;
    elementwise += 3 * elementwise_fwd + (full ? elementwise_fwd : 0);
    tp_comm += (full ? 6 : 4) * tp_one;  // 2 forward, 2 backward, 2 more when recomputing
    if (moe) ep_comm += (full ? 6 : 4) * ep_one;
    cp_comm += std::max(0.0, 3 * cp_one - (attention_fwd + attention_bwd));
  }
  const double layer_share = stage_layers / L;
  // Output layer and loss on the last stage (not balanced away, as in
  // Megatron-LM): logits GEMM forward + backward, fp32 softmax streaming.
  const double head = 3 * gemm_time(gpu, T, V / tp, h) + stream_time(gpu, T * V / tp * 4 * 3);
  const double pp_one = layout.pp > 1 ? p2p_time(cluster, pp_inside_node, T * h * kBf16 / tp) : 0;
  const double pp_per_micro_batch = layout.pp > 1 ? 2 * vp * pp_one : 0;

  StepBreakdown& st = plan.step;
  st.gemm_s = m * (layer_share * gemm + head);
  st.attention_s = m * layer_share * attention;
  st.elementwise_s = m * layer_share * elementwise;
  st.tp_comm_s = m * layer_share * tp_comm;
  st.ep_comm_s = m * layer_share * ep_comm;
  st.cp_comm_s = m * layer_share * cp_comm;
  st.pp_comm_s = m * pp_per_micro_batch;
  const double micro_batch_s = (st.gemm_s + st.attention_s + st.elementwise_s + st.tp_comm_s + st.ep_comm_s +
                                st.cp_comm_s + st.pp_comm_s) / m;
  st.bubble_s = (pp - 1) / vp * micro_batch_s;

  // ---- Parameters held by one GPU (the deepest stage, first or last) ----
  double dense_per_layer = 0, expert_per_layer = 0;
  for (const auto& layer : counts.layers) {
    if (layer.is_moe) {
      dense_per_layer += static_cast<double>(layer.attention + layer.norms + layer.router);
      expert_per_layer += static_cast<double>(layer.ffn);
    } else {
      dense_per_layer += static_cast<double>(layer.total());
    }
  }
  dense_per_layer /= L;
  expert_per_layer /= L;
  const double vocab_params = static_cast<double>(std::max(counts.embedding, counts.output)) / tp;
  const double local_dense = stage_layers * dense_per_layer / tp + vocab_params;
  const double local_expert = stage_layers * expert_per_layer / (tp * ep);

  // DP communication: gradient reduce-scatter (ZeRO >= 1) or all-reduce
  // (both move 2(n-1)/n S), parameter all-gather; ZeRO-3 gathers weights
  // again for the backward. Overlap hides it behind the last micro-batch's
  // backward (gradients) and the first forward (parameters).
  const double dense_grad_bytes = local_dense * kBf16, expert_grad_bytes = local_expert * kBf16;
  double dp_total = all_reduce_time(cluster, dp_group, dense_grad_bytes) +
                    all_reduce_time(cluster, expert_dp_group, expert_grad_bytes);
  if (layout.zero == 3)
    dp_total += reduce_scatter_time(cluster, dp_group, dense_grad_bytes) * 2 * m +
                reduce_scatter_time(cluster, expert_dp_group, expert_grad_bytes) * 2 * m;
  const double overlap_window = layout.overlap_dp ? micro_batch_s * (layout.zero == 3 ? m : 1.0) : 0;
  st.dp_comm_s = std::max(0.0, dp_total - overlap_window);

  // AdamW: reads and writes weights, grads, master, m, v once (~32 B/param).
  const double optimizer_shard = layout.zero >= 1 ? 1.0 / dense_dp : 1.0;
  st.optimizer_s = stream_time(gpu, 32 * (local_dense + local_expert * ep) * optimizer_shard);
  st.step_s = m * micro_batch_s + st.bubble_s + st.dp_comm_s + st.optimizer_s;

  // ---- Memory per GPU ----
  MemoryBreakdown& mem = plan.memory;
  const double dense_shard = static_cast<double>(dense_dp), expert_shard = static_cast<double>(expert_dp);
  auto sharded = [&](double bytes_per_param, int stage_from) {
    const bool shard = layout.zero >= stage_from;
    return bytes_per_param * (local_dense / (shard ? dense_shard : 1) + local_expert / (shard ? expert_shard : 1));
  };
  mem.weights_bytes = sharded(kWeightBytes, 3);
  mem.grads_bytes = sharded(kGradBytes, 2);
  mem.optimizer_bytes = sharded(kOptimizerBytes, 1);
  // Activations per layer per micro-batch: the tensors kept for backward
  // (Korthikanti et al. 2022, section 4, generalized to GQA, gated MLPs,
  // MoE and fused attention); sequence parallelism shards every part over tp.
  const double kept_norm_inputs = kBf16 * (norms + 2) * h;  // norm inputs, QKV input, MLP input
  const double kept_dropout_masks = model.dropout ? 2 * h : 0;
  const double kept_attention = kBf16 * (2 * hq_d + 2 * kv_d);  // Q, K, V, out-proj input
  const double kept_mlp = kBf16 * (model.gated_mlp ? 3 * F : 2 * F) * k_active + (c.is_moe() ? kBf16 * k_active * h : 0);
  const double kept_scores = model.flash_attention ? 0
                             : (model.dropout ? 5.0 : 2.0) * static_cast<double>(c.num_attention_heads) * s;
  double per_layer = T * ((kept_norm_inputs + kept_dropout_masks + kept_attention + kept_mlp) / tp);
  const double scores_bytes = b * kept_scores * (s / cp) / tp;
  if (layout.recompute == Recompute::kNone) per_layer += scores_bytes;
  const double layer_input = T * h * kBf16 / tp;
  const double in_flight = std::min(m, pp) * (layout.vp > 1 && layout.pp > 1 ? 1 + (pp - 1) / (pp * vp) : 1.0);
  const double stage_kept = (full ? layer_input : per_layer) * stage_layers;
  // The first stage keeps min(m, p) micro-batches of its layers in flight.
  double activations = stage_kept * in_flight;
  if (full) activations += per_layer + scores_bytes;  // the one layer being recomputed
  const double logits = T * V / tp * (kBf16 + 4);     // bf16 logits + fp32 loss input, last stage
  const double last_stage = (full ? layer_input : per_layer) * stage_layers + logits;
  mem.activations_bytes = std::max(activations, last_stage);
  mem.buffers_bytes = kFixedBuffersBytes + kFragmentation * mem.activations_bytes;
  mem.total_bytes = mem.weights_bytes + mem.grads_bytes + mem.optimizer_bytes + mem.activations_bytes + mem.buffers_bytes;
  mem.capacity_bytes = gpu.hbm_bytes;
  mem.fits = mem.total_bytes <= mem.capacity_bytes;

  // ---- Throughput, MFU, days ----
  const double n = static_cast<double>(plan.num_gpus);
  plan.tokens_per_s = static_cast<double>(run.global_batch_tokens) / st.step_s;
  const double model_flops = plan.model_flops_per_token * plan.tokens_per_s;
  plan.model_tflops_per_gpu = model_flops / n / 1e12;
  plan.mfu = model_flops / (n * gpu.bf16_flops);
  // Hardware FLOPs add what recomputation repeats: a whole forward (full) or
  // the attention core's forward (selective), as Megatron-LM 2021 counted.
  const FlopsPerToken f = flops_per_token(c, run.seq_len);
  const double extra = full ? static_cast<double>(f.forward)
                            : layout.recompute == Recompute::kSelective ? static_cast<double>(f.forward_attention) : 0;
  plan.hardware_tflops_per_gpu = (plan.model_flops_per_token + extra) * plan.tokens_per_s / n / 1e12;
  plan.days = run.train_tokens / plan.tokens_per_s / 86400;

  // ---- Reliability (Young/Daly) ----
  Reliability& r = plan.reliability;
  double rate_per_hour = 0;
  for (const auto& cause : cluster.failures)
    rate_per_hour += cause.rate_per_hour * (cause.component == "node" ? std::ceil(n / cluster.gpus_per_node) : n);
  r.interruptions_per_day = rate_per_hour * 24;
  r.job_mtbf_s = rate_per_hour > 0 ? 3600 / rate_per_hour : 1e30;
  r.checkpoint_bytes = plan.total_parameters * kCheckpointBytesPerParam;
  r.checkpoint_write_s = r.checkpoint_bytes / cluster.storage_write_bytes_per_s;
  r.checkpoint_interval_s = daly_interval(r.checkpoint_write_s, r.job_mtbf_s);
  // Lost per unit of wall time: writing checkpoints, and per interruption a
  // restart plus half an interval (plus its write) of redone work.
  r.lost_fraction = r.checkpoint_write_s / (r.checkpoint_interval_s + r.checkpoint_write_s) +
                    (cluster.restart_s + (r.checkpoint_interval_s + r.checkpoint_write_s) / 2) / r.job_mtbf_s;
  r.lost_fraction = std::min(r.lost_fraction, 0.99);
  r.goodput = 1 - r.lost_fraction;
  plan.effective_days = plan.days / r.goodput;
  r.expected_interruptions = r.interruptions_per_day * plan.effective_days;

  // ---- Power, energy, cost ----
  const double node_w = cluster.gpus_per_node * gpu.tdp_w + cluster.node_power_beyond_gpus_w;
  plan.it_power_mw = cluster.num_nodes() * node_w * (1 + cluster.network_storage_power_fraction) / 1e6;
  plan.facility_power_mw = plan.it_power_mw * cluster.pue;
  plan.energy_mwh = plan.facility_power_mw * plan.effective_days * 24;
  plan.gpu_hours = n * plan.effective_days * 24;
  plan.cost_usd = plan.gpu_hours * cluster.gpu_hour_usd;
  return plan;
}

nlohmann::json plan_to_json(const Plan& p) {
  const auto& st = p.step;
  const auto& mem = p.memory;
  const auto& r = p.reliability;
  return {
      {"model", p.model},
      {"cluster", p.cluster},
      {"gpu", p.gpu},
      {"num_gpus", p.num_gpus},
      {"idle_gpus", p.idle_gpus},
      {"layout",
       {{"tp", p.layout.tp}, {"pp", p.layout.pp}, {"vp", p.layout.vp}, {"dp", p.layout.dp}, {"ep", p.layout.ep},
        {"cp", p.layout.cp}, {"zero", p.layout.zero}, {"micro_batch", p.layout.micro_batch},
        {"recompute", recompute_name(p.layout.recompute)}, {"overlap_dp", p.layout.overlap_dp},
        {"micro_batches", p.micro_batches}}},
      {"seq_len", p.run.seq_len},
      {"global_batch_tokens", p.run.global_batch_tokens},
      {"train_tokens", p.run.train_tokens},
      {"total_parameters", p.total_parameters},
      {"active_parameters", p.active_parameters},
      {"model_flops_per_token", p.model_flops_per_token},
      {"step_time_s", st.step_s},
      {"step_breakdown_s",
       {{"gemm", st.gemm_s}, {"attention", st.attention_s}, {"elementwise", st.elementwise_s},
        {"tp_comm", st.tp_comm_s}, {"pp_comm", st.pp_comm_s}, {"ep_comm", st.ep_comm_s}, {"cp_comm", st.cp_comm_s},
        {"dp_comm", st.dp_comm_s}, {"bubble", st.bubble_s}, {"optimizer", st.optimizer_s}}},
      {"tokens_per_s", p.tokens_per_s},
      {"mfu", p.mfu},
      {"model_tflops_per_gpu", p.model_tflops_per_gpu},
      {"hardware_tflops_per_gpu", p.hardware_tflops_per_gpu},
      {"memory_per_gpu_bytes", mem.total_bytes},
      {"memory_breakdown_bytes",
       {{"weights", mem.weights_bytes}, {"grads", mem.grads_bytes}, {"optimizer", mem.optimizer_bytes},
        {"activations", mem.activations_bytes}, {"buffers", mem.buffers_bytes}, {"capacity", mem.capacity_bytes}}},
      {"fits", mem.fits},
      {"days", p.days},
      {"effective_days", p.effective_days},
      {"gpu_hours", p.gpu_hours},
      {"it_power_mw", p.it_power_mw},
      {"facility_power_mw", p.facility_power_mw},
      {"energy_mwh", p.energy_mwh},
      {"cost_usd", p.cost_usd},
      {"expected_interruptions", r.expected_interruptions},
      {"interruptions_per_day", r.interruptions_per_day},
      {"job_mtbf_s", r.job_mtbf_s},
      {"checkpoint_bytes", r.checkpoint_bytes},
      {"checkpoint_write_s", r.checkpoint_write_s},
      {"checkpoint_interval_s", r.checkpoint_interval_s},
      {"goodput", r.goodput},
  };
}

}  // namespace sc::plan
