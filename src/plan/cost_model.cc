#include "plan/cost_model.h"

#include <algorithm>
#include <cmath>

#include "model/counts.h"
#include "plan/collectives.h"
#include "plan/kernel_model.h"
#include "plan/pipeline.h"
#include "plan/reliability.h"

namespace sc::plan {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kBf16 = 2;                      // bytes per activation / weight element
constexpr double kFixedBuffersBytes = 2 * kGiB;  // CUDA context, cuBLAS workspace, NCCL channels
constexpr double kFragmentation = 0.10;          // caching allocator slack and transients on activations
// Mixed-precision Adam: bf16 (or fp16) weights 2 B, the main gradient
// (SoftwareStack::main_grad_bytes), fp32 master weights, m and v 12 B
// (ZeRO paper; Megatron-core's distributed optimizer page: 18 B with fp32
// main grads).
constexpr double kWeightBytes = 2, kOptimizerBytes = 12;

// Time of one micro-batch's forward + backward (+ recompute) on one pipeline
// rank, by part.
struct MicroBatchParts {
  double gemm = 0, attention = 0, elementwise = 0, grad_accum = 0, tp = 0, ep = 0, cp = 0;
  double total() const { return gemm + attention + elementwise + grad_accum + tp + ep + cp; }
  MicroBatchParts operator*(double k) const {
    return {gemm * k, attention * k, elementwise * k, grad_accum * k, tp * k, ep * k, cp * k};
  }
  MicroBatchParts operator+(const MicroBatchParts& o) const {
    return {gemm + o.gemm, attention + o.attention, elementwise + o.elementwise, grad_accum + o.grad_accum,
            tp + o.tp, ep + o.ep, cp + o.cp};
  }
};

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
  const int64_t layer_slots = c.num_hidden_layers + (layout->balance_pipeline && layout->pp > 1 ? 2 : 0);
  if (layout->pp * layout->vp > layer_slots)
    return Status::invalid("--pp {} x --vp {} is more stages than num_hidden_layers {}", layout->pp, layout->vp,
                           c.num_hidden_layers);
  if (layout->vp > 1 && layout->pp == 1) return Status::invalid("--vp {} needs --pp > 1 (interleaving a pipeline)", layout->vp);
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

ModelFacts model_facts(const PlanModel& model, int64_t seq_len) {
  return {count_parameters(model.config), flops_per_token(model.config, seq_len)};
}

Result<Plan> plan_run(const PlanModel& model, const ClusterSpec& cluster, Layout layout, const RunSpec& run,
                      const ModelFacts* given_facts) {
  SC_RETURN_IF_ERROR(validate_layout(model, cluster, run, &layout));
  const ModelConfig& c = model.config;
  const GpuSpec& gpu = cluster.gpu;
  const SoftwareStack& sw = layout.software;
  const ModelFacts facts = given_facts ? *given_facts : model_facts(model, run.seq_len);
  const ParameterCounts& counts = facts.counts;
  const double tp = layout.tp, vp = layout.vp, cp = layout.cp, ep = layout.ep;
  const double L = static_cast<double>(c.num_hidden_layers), h = static_cast<double>(c.hidden_size);
  const double hq_d = static_cast<double>(c.num_attention_heads * c.head_dim);
  const double kv_d = static_cast<double>(c.num_key_value_heads * c.head_dim);
  const double F = static_cast<double>(model.mlp_width), V = static_cast<double>(c.vocab_size);
  const double s = static_cast<double>(run.seq_len), b = static_cast<double>(layout.micro_batch);
  const double k_active = c.is_moe() ? static_cast<double>(c.num_experts_per_tok) : 1;
  const double E = c.is_moe() ? static_cast<double>(c.num_experts) : 1;
  const double T = b * s / cp;  // tokens per micro-batch on this GPU's TP group
  const int64_t micro_batches = run.global_batch_tokens / run.seq_len / (layout.dp * layout.micro_batch);
  const double m = static_cast<double>(micro_batches);
  const bool full = layout.recompute == Recompute::kFull;
  const bool selective = layout.recompute == Recompute::kSelective;
  // Without sequence parallelism the h-wide elementwise work and its saved
  // inputs are repeated on every TP rank (Korthikanti et al. 2022, 4.2.2).
  const double sp_split = sw.sequence_parallel ? tp : 1;

  Plan plan;
  plan.model = model.name;
  plan.cluster = cluster.name;
  plan.gpu = gpu.name;
  plan.num_gpus = layout.tp * layout.pp * layout.cp * layout.dp;
  plan.idle_gpus = cluster.num_gpus - plan.num_gpus;
  plan.layout = layout;
  plan.run = run;
  plan.micro_batches = micro_batches;
  plan.total_parameters = static_cast<double>(counts.total);
  plan.active_parameters = static_cast<double>(counts.active);
  const FlopsPerToken& f = facts.flops;
  plan.model_flops_per_token = static_cast<double>(f.training);  // model_flops_per_token()

  // ---- Communication groups (Megatron rank order: tp, cp, ep within dp, dp, pp) ----
  const Group tp_group = strided_group(cluster, layout.tp, 1);
  const Group cp_group = strided_group(cluster, layout.cp, layout.tp);
  const Group ep_group = strided_group(cluster, layout.ep, layout.tp * layout.cp);
  const int64_t dense_dp = layout.dp * layout.cp;  // ZeRO / gradient group of dense weights
  const Group dp_group = strided_group(cluster, dense_dp, layout.tp);
  const int64_t expert_dp = dense_dp / layout.ep;
  const Group expert_dp_group = strided_group(cluster, expert_dp, layout.tp * layout.ep);
  const bool pp_inside_node = layout.tp * layout.cp * layout.dp < cluster.gpus_per_node && layout.pp > 1;

  // ---- Parameters per layer on one GPU ----
  double dense_per_layer = 0, expert_per_layer = 0;
  for (const auto& layer : counts.layers) {
    if (layer.is_moe) {
      dense_per_layer += static_cast<double>(layer.attention + layer.norms + layer.router);
      expert_per_layer += static_cast<double>(layer.ffn);
    } else {
      dense_per_layer += static_cast<double>(layer.total());
    }
  }
  dense_per_layer /= L * tp;
  expert_per_layer /= L * tp * ep;
  const double local_per_layer = dense_per_layer + expert_per_layer;
  const double vocab_local = V * h / tp;  // embedding or output matrix on one GPU

  // ---- Forward GEMMs of one layer and one micro-batch ----
  const double mlp_in_width = model.gated_mlp ? 2 * F : F;
  const double attention_gemm = gemm_time_s(gpu, T, (hq_d + 2 * kv_d) / tp, h) + gemm_time_s(gpu, T, h, hq_d / tp);
  const double dense_gemm = attention_gemm + gemm_time_s(gpu, T, mlp_in_width / tp, h) + gemm_time_s(gpu, T, h, F / tp);
  double moe_gemm = 0;
  if (c.is_moe()) {
    // Each GPU holds E/ep experts; in expectation T*k*ep/E tokens reach each.
    const double tokens_per_expert = T * k_active * ep / E;
    moe_gemm = attention_gemm + gemm_time_s(gpu, T, E, h) +
               (E / ep) * (gemm_time_s(gpu, tokens_per_expert, mlp_in_width / tp, h) +
                           gemm_time_s(gpu, tokens_per_expert, h, F / tp));
  }
  // ---- Attention core ----
  // Fused kernels skip the masked half of a causal s x s (each of T queries
  // sees s/2 keys on average); FlashAttention's backward does 2.5x the
  // forward's matmul work (FA2's own accounting) and recomputes the scores.
  const double heads_local = static_cast<double>(c.num_attention_heads) / tp;
  double attention_fwd = 0, attention_bwd = 0;
  if (model.flash_attention) {
    const double fwd_flops = 4 * T * (s / 2) * heads_local * static_cast<double>(c.head_dim);
    const double efficiency = sw.flash_attention_version >= 3 && gpu.fa3_efficiency > 0 ? gpu.fa3_efficiency
                                                                                        : gpu.fa2_efficiency;
    const double rate = gpu.bf16_flops * efficiency;
    attention_fwd = fwd_flops / rate;
    attention_bwd = 2.5 * fwd_flops / rate;
  } else {
    // Unfused (2021): batched QK^T and PV over the full s x s, then a fused
    // scale-mask-softmax and dropout streaming the scores through HBM
    // (about 11 bytes per score forward, 15 backward).
    const double batch_heads = b * heads_local;
    const double bmm = 2 * gemm_time_s(gpu, s * batch_heads / cp, s, static_cast<double>(c.head_dim));
    const double scores = batch_heads * (s / cp) * s;
    attention_fwd = bmm + stream_time_s(gpu, scores * (model.dropout ? 11 : 6));
    attention_bwd = 2 * bmm + stream_time_s(gpu, scores * (model.dropout ? 15 : 8));
  }
  const bool recompute_attention = full || (selective && !model.flash_attention);
  // ---- Bandwidth-bound elementwise work per token (bytes, forward) ----
  // Norms (read + write), the two residual adds (read 2, write 1; bias and
  // dropout fused into them in Megatron) and 1-byte dropout masks: h wide,
  // split over tp only with sequence parallelism. MLP activation and
  // rotary: split by tp.
  const int64_t norms = c.sandwich_norm ? 4 : 2;
  const double h_bytes = (kBf16 * (2.0 * norms * h + 6 * h) + (model.dropout ? 2 * h : 0)) / sp_split;
  const double mlp_act_bytes = kBf16 * (model.gated_mlp ? 3 * F : 2 * F) * k_active / tp;
  const double rope_bytes = model.rotary ? kBf16 * 2 * (hq_d + kv_d) / tp : 0;
  const double elementwise_fwd = stream_time_s(gpu, T * (h_bytes + mlp_act_bytes + rope_bytes)) + 12 * kKernelOverheadS;
  // Selective recompute with fused attention redoes the norms and the gated
  // product in the backward: their forward traffic once more.
  const double cheap_recompute = selective && model.flash_attention
                                     ? stream_time_s(gpu, T * (kBf16 * 2 * 2 * h / sp_split +
                                                               (model.gated_mlp ? kBf16 * 3 * F * k_active / tp : 0)))
                                     : 0;

  // ---- Collectives per layer per micro-batch ----
  // TP: with SP 2 all-gathers + 2 reduce-scatters forward, as many backward
  // (2 all-reduces each way without SP: the same bytes), 2 more when the
  // forward is recomputed; not overlapped with compute.
  const double tp_one = layout.tp > 1 ? all_reduce_time_s(cluster, tp_group, T * h * kBf16) : 0;
  const double ep_bytes = T * k_active * h * kBf16 / tp;  // tokens this GPU sends (SP: 1/tp of them)
  const double ep_one = all_to_all_time_s(cluster, ep_group, ep_bytes);
  const double cp_bytes = (cp - 1) * 2 * T * (kv_d / tp) * kBf16 *
                          (tp > static_cast<double>(c.num_key_value_heads) ? tp / static_cast<double>(c.num_key_value_heads) : 1);
  const double cp_one = layout.cp > 1 ? all_gather_time_s(cluster, cp_group, cp_bytes / (cp - 1) * cp) : 0;
  // Gradient accumulation when not fused into the weight-gradient GEMM: a
  // kernel reads the fresh bf16 gradient and reads and writes the main one.
  auto accumulate_s = [&](double params) {
    return sw.fused_grad_accumulation ? 0.0 : stream_time_s(gpu, params * (kBf16 + 2 * sw.main_grad_bytes));
  };

  // ---- One micro-batch of the average layer, forward + backward (+ recompute) ----
  MicroBatchParts layer_sum;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const bool moe = c.is_moe_layer(l);
    const double g = moe ? moe_gemm : dense_gemm;
    MicroBatchParts p;
    p.gemm = 3 * g + (full ? g : 0);  // backward = 2x forward
    p.attention = attention_fwd + attention_bwd + (recompute_attention ? attention_fwd : 0);
    p.elementwise = 3 * elementwise_fwd + (full ? elementwise_fwd : cheap_recompute);
    p.tp = (full ? 6 : 4) * tp_one;
    p.ep = moe ? (full ? 6 : 4) * ep_one : 0;
    p.cp = std::max(0.0, 3 * cp_one - (attention_fwd + attention_bwd));
    p.grad_accum = accumulate_s(local_per_layer);
    layer_sum = layer_sum + p;
  }
  // The job runs at the pace of its slowest GPU: its kernels take longer.
  const double slow = 1 / cluster.slowest_gpu_factor(plan.num_gpus);
  auto slowed = [slow](MicroBatchParts p) {
    p.gemm *= slow, p.attention *= slow, p.elementwise *= slow, p.grad_accum *= slow;
    return p;
  };
  const MicroBatchParts layer = slowed(layer_sum * (1 / L));
  // Output layer and loss (last rank): logits GEMM forward + backward, fp32
  // softmax streaming. Embedding (first rank): its dense weight gradient.
  MicroBatchParts head;
  head.gemm = 3 * gemm_time_s(gpu, T, V / tp, h);
  head.elementwise = stream_time_s(gpu, T * V / tp * 4 * 3);
  head.grad_accum = accumulate_s(vocab_local);
  head = slowed(head);
  MicroBatchParts embedding;
  embedding.elementwise = stream_time_s(gpu, vocab_local * kBf16 + T * h * kBf16 * 2);
  embedding.grad_accum = accumulate_s(vocab_local);
  embedding = slowed(embedding);

  // ---- Pipeline: the slowest rank sets the pace ----
  const PipelineShape shape = pipeline_shape(c.num_hidden_layers, layout.pp, layout.vp, layout.balance_pipeline);
  MicroBatchParts pace = layer * static_cast<double>(shape.first_layers) + embedding + head;  // pp == 1
  if (layout.pp > 1) {
    const MicroBatchParts first = layer * static_cast<double>(shape.first_layers) + embedding;
    const MicroBatchParts last = layer * static_cast<double>(shape.last_layers) + head;
    const MicroBatchParts middle = layer * static_cast<double>(shape.middle_layers);
    pace = first.total() >= last.total() ? first : last;
    if (middle.total() > pace.total()) pace = middle;
  }
  // Stage-to-stage: one activation of T x h, split over tp (SP, or the 2021
  // scatter/gather, which rebuilds it with an NVLink all-gather), each way
  // per chunk per micro-batch. Blocking sends sit on the critical path;
  // asynchronous ones hide behind the chunk's compute.
  double pp_one = 0;
  if (layout.pp > 1) {
    pp_one = p2p_time_s(cluster, pp_inside_node, T * h * kBf16 / tp);
    if (!sw.sequence_parallel && layout.tp > 1) pp_one += all_gather_time_s(cluster, tp_group, T * h * kBf16);
  }
  const double chunk_compute = pace.total() / vp;
  const double pp_per_micro_batch =
      sw.overlap_pp ? 2 * vp * std::max(0.0, pp_one - chunk_compute) : 2 * vp * pp_one;

  StepBreakdown& st = plan.step;
  st.gemm_s = m * pace.gemm;
  st.attention_s = m * pace.attention;
  st.elementwise_s = m * pace.elementwise;
  st.grad_accum_s = m * pace.grad_accum;
  st.tp_comm_s = m * pace.tp;
  st.ep_comm_s = m * pace.ep;
  st.cp_comm_s = m * pace.cp;
  st.pp_comm_s = m * pp_per_micro_batch;
  const double micro_batch_s = pace.total() + pp_per_micro_batch;
  st.bubble_s = pipeline_overhead_s(layout.pp, layout.vp, micro_batches, micro_batch_s, pp_one, sw.overlap_pp);

  // ---- Parameters on each pipeline rank ----
  const bool tied = counts.output == 0;
  const double first_params = static_cast<double>(shape.first_layers) * local_per_layer + vocab_local;
  const double last_params = static_cast<double>(shape.last_layers) * local_per_layer +
                             (layout.pp > 1 || !tied ? vocab_local : 0);
  const double middle_params = static_cast<double>(shape.middle_layers) * local_per_layer;
  const double max_params = std::max({first_params, last_params, middle_params});
  const double max_expert_params = static_cast<double>(std::max({shape.first_layers, shape.last_layers, shape.middle_layers})) *
                                   expert_per_layer;
  const double max_dense_params = max_params - max_expert_params;

  // ---- Data parallelism ----
  // ZeRO 0: all-reduce the main grads once per step. ZeRO 1 (distributed
  // optimizer): reduce-scatter them once, all-gather the updated bf16
  // weights. ZeRO 2/3 keep no full gradient, so every micro-batch's
  // gradients are reduce-scattered; ZeRO 3 also gathers the weights for each
  // micro-batch's forward and backward. Overlapped, the traffic hides behind
  // the compute it runs beside, except the last chunk's share; it cannot hide
  // more than there is compute.
  const double reduce_count = layout.zero >= 2 ? m : 1, gather_count = layout.zero == 3 ? 2 * m : 1;
  auto dp_times = [&](const Group& group, double params) {
    const double grads = params * sw.main_grad_bytes, weights = params * kBf16;
    if (layout.zero == 0) return std::pair{all_reduce_time_s(cluster, group, grads), 0.0};
    return std::pair{reduce_scatter_time_s(cluster, group, grads) * reduce_count,
                     all_gather_time_s(cluster, group, weights) * gather_count};
  };
  const auto [dense_reduce, dense_gather] = dp_times(dp_group, max_dense_params);
  const auto [expert_reduce, expert_gather] = dp_times(expert_dp_group, max_expert_params);
  const double reduce_s = dense_reduce + expert_reduce, gather_s = dense_gather + expert_gather;
  if (sw.overlap_dp) {
    const double backward_s = m * chunk_compute * vp * 2 / 3, forward_s = m * chunk_compute * vp / 3;
    const double backward_chunk = chunk_compute * 2 / 3, forward_chunk = chunk_compute / 3;
    // What runs beside compute: all but the last chunk-micro-batch's share.
    const double last_share = 1 / (vp * reduce_count), last_gather_share = 1 / (vp * gather_count);
    st.dp_comm_s = std::max(0.0, reduce_s * last_share - backward_chunk) +
                   std::max(0.0, reduce_s * (1 - last_share) - backward_s) +
                   std::max(0.0, gather_s * last_gather_share - forward_chunk) +
                   std::max(0.0, gather_s * (1 - last_gather_share) - forward_s);
  } else {
    st.dp_comm_s = reduce_s + gather_s;
  }

  // AdamW: reads and writes weights, grads, master, m, v once (~32 B/param).
  const double optimizer_shard = layout.zero >= 1 ? 1.0 / static_cast<double>(dense_dp) : 1.0;
  st.optimizer_s = stream_time_s(gpu, 32 * (max_dense_params + max_expert_params * ep) * optimizer_shard);
  st.step_s = m * micro_batch_s + st.bubble_s + st.dp_comm_s + st.optimizer_s;

  // ---- Memory per GPU, on the rank that needs the most ----
  // Activations kept per layer per micro-batch (Korthikanti et al. 2022,
  // section 4, generalized to GQA, gated MLPs, MoE and fused attention).
  // Split over tp: Q/K/V and the attention output, MLP intermediates.
  // Split over tp only with SP: norm inputs, the QKV and MLP inputs, dropout masks.
  const double kept_replicated = kBf16 * (norms + 2) * h + (model.dropout ? 2 * h : 0);
  const double kept_sharded = kBf16 * (2 * hq_d + 2 * kv_d) +
                              kBf16 * (model.gated_mlp ? 3 * F : 2 * F) * k_active + (c.is_moe() ? kBf16 * k_active * h : 0);
  double per_layer = T * (kept_replicated / sp_split + kept_sharded / tp);
  if (selective && model.flash_attention)  // norm outputs and the gated product are recomputed
    per_layer -= T * (kBf16 * 2 * h / sp_split + (model.gated_mlp ? kBf16 * F * k_active / tp : 0));
  const double kept_scores = model.flash_attention ? 0
                             : (model.dropout ? 5.0 : 2.0) * static_cast<double>(c.num_attention_heads) * s;
  const double scores_bytes = b * kept_scores * (s / cp) / tp;
  if (layout.recompute == Recompute::kNone) per_layer += scores_bytes;
  const double layer_input = T * h * kBf16 / sp_split;
  const double kept_per_layer = full ? layer_input : per_layer;
  // A chunk's output tensor stays until its backward unless freed once sent.
  const double chunk_output = sw.free_pipeline_outputs || layout.pp == 1 ? 0 : layer_input;
  const double logits = T * V / tp * (kBf16 + 4);  // bf16 logits + fp32 loss input
  auto activations_on = [&](int64_t rank, int64_t layers) {
    const double chunks = in_flight_chunks(shape, rank, micro_batches);
    double bytes = chunks * (static_cast<double>(layers) / vp * kept_per_layer + chunk_output);
    if (full) bytes += per_layer + scores_bytes;  // the one layer being recomputed
    if (rank == layout.pp - 1) bytes += logits;
    return bytes;
  };
  const double dense_shard = static_cast<double>(dense_dp), expert_shard = static_cast<double>(expert_dp);
  auto memory_on = [&](int64_t rank, int64_t layers, double vocab_params) {
    MemoryBreakdown mem;
    const double dense = static_cast<double>(layers) * dense_per_layer + vocab_params;
    const double expert = static_cast<double>(layers) * expert_per_layer;
    auto sharded = [&](double bytes_per_param, int64_t stage_from) {
      const bool shard = layout.zero >= stage_from;
      return bytes_per_param * (dense / (shard ? dense_shard : 1) + expert / (shard ? expert_shard : 1));
    };
    mem.weights_bytes = sharded(kWeightBytes, 3);
    mem.grads_bytes = sharded(sw.main_grad_bytes, 2);
    mem.optimizer_bytes = sharded(kOptimizerBytes, 1);
    mem.activations_bytes = activations_on(rank, layers);
    mem.buffers_bytes = kFixedBuffersBytes + kFragmentation * mem.activations_bytes;
    mem.total_bytes = mem.weights_bytes + mem.grads_bytes + mem.optimizer_bytes + mem.activations_bytes + mem.buffers_bytes;
    mem.pipeline_rank = rank;
    return mem;
  };
  MemoryBreakdown mem = memory_on(0, shape.first_layers, vocab_local);
  if (layout.pp > 1) {
    const MemoryBreakdown last = memory_on(layout.pp - 1, shape.last_layers, vocab_local);
    if (last.total_bytes > mem.total_bytes) mem = last;
    if (layout.pp > 2) {
      const MemoryBreakdown middle = memory_on(1, shape.middle_layers, 0);
      if (middle.total_bytes > mem.total_bytes) mem = middle;
    }
  } else if (!tied) {
    mem = memory_on(0, shape.first_layers, 2 * vocab_local);
  }
  mem.capacity_bytes = gpu.hbm_bytes;
  mem.fits = mem.total_bytes <= mem.capacity_bytes;
  plan.memory = mem;

  // ---- Throughput, MFU, days ----
  const double n = static_cast<double>(plan.num_gpus);
  plan.tokens_per_s = static_cast<double>(run.global_batch_tokens) / st.step_s;
  const double model_flops = plan.model_flops_per_token * plan.tokens_per_s;
  plan.model_tflops_per_gpu = model_flops / n / 1e12;
  plan.mfu = model_flops / (n * gpu.bf16_flops);
  // Hardware FLOPs add what recomputation repeats: a whole forward (full) or
  // the attention core's forward (selective), as Megatron-LM 2021 counted.
  const double extra = full ? static_cast<double>(f.forward)
                            : recompute_attention ? static_cast<double>(f.forward_attention) : 0;
  plan.hardware_tflops_per_gpu = (plan.model_flops_per_token + extra) * plan.tokens_per_s / n / 1e12;
  plan.days = run.train_tokens / plan.tokens_per_s / 86400;

  add_reliability_and_power(cluster, &plan);
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
        {"recompute", recompute_name(p.layout.recompute)}, {"overlap_dp", p.layout.software.overlap_dp},
        {"balance_pipeline", p.layout.balance_pipeline}, {"software", p.layout.software.name},
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
        {"grad_accum", st.grad_accum_s}, {"tp_comm", st.tp_comm_s}, {"pp_comm", st.pp_comm_s}, {"ep_comm", st.ep_comm_s}, {"cp_comm", st.cp_comm_s},
        {"dp_comm", st.dp_comm_s}, {"bubble", st.bubble_s}, {"optimizer", st.optimizer_s}}},
      {"tokens_per_s", p.tokens_per_s},
      {"mfu", p.mfu},
      {"model_tflops_per_gpu", p.model_tflops_per_gpu},
      {"hardware_tflops_per_gpu", p.hardware_tflops_per_gpu},
      {"memory_per_gpu_bytes", mem.total_bytes},
      {"memory_breakdown_bytes",
       {{"weights", mem.weights_bytes}, {"grads", mem.grads_bytes}, {"optimizer", mem.optimizer_bytes},
        {"activations", mem.activations_bytes}, {"buffers", mem.buffers_bytes}, {"capacity", mem.capacity_bytes},
        {"pipeline_rank", mem.pipeline_rank}}},
      {"fits", mem.fits},
      {"days", p.days},
      {"effective_days", p.effective_days},
      {"gpu_hours", p.gpu_hours},
      {"it_power_mw", p.it_power_mw},
      {"power_breakdown_mw",
       {{"gpus", p.power.gpus_mw}, {"node_rest", p.power.node_rest_mw},
        {"network_storage", p.power.network_storage_mw}, {"cooling", p.power.cooling_mw}}},
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
