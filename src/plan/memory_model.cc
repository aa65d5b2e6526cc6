#include "plan/memory_model.h"

namespace sc::plan {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kFixedBuffersBytes = 2 * kGiB;  // CUDA context, cuBLAS workspace, NCCL channels
constexpr double kFragmentation = 0.10;          // caching allocator slack and transients on activations
// Mixed-precision Adam: bf16 (or fp16) weights 2 B, the main gradient
// (SoftwareStack::main_grad_bytes), fp32 master weights, m and v 12 B
// (ZeRO paper; Megatron-core's distributed optimizer page: 18 B with fp32
// main grads).
constexpr double kWeightBytes = 2, kOptimizerBytes = 12;

}  // namespace

// Split over tp: Q/K/V and the attention output, MLP intermediates. Split
// over tp only with SP: norm inputs, the QKV and MLP inputs, dropout masks.
ActivationSizes activation_sizes(const PlanModel& model, const Layout& layout, const MicroBatchDims& d) {
  const ModelConfig& c = model.config;
  const double T = d.tokens, h = d.hidden, F = d.mlp_width, V = d.vocab, s = d.seq_len, b = d.micro_batch;
  const double tp = d.tp, cp = d.cp, sp_split = d.sp_split, k_active = d.experts_per_token;
  const bool full = layout.recompute == Recompute::kFull;
  const int64_t norms = c.sandwich_norm ? 4 : 2;
  const double kept_replicated = kBf16 * (norms + 2) * h + (model.dropout ? 2 * h : 0);
  const double kept_sharded = kBf16 * (2 * d.query_width + 2 * d.kv_width) +
                              kBf16 * (model.gated_mlp ? 3 * F : 2 * F) * k_active +
                              (c.is_moe() ? kBf16 * k_active * h : 0);
  double per_layer = T * (kept_replicated / sp_split + kept_sharded / tp);
  // Selective recompute with fused attention: the norm outputs and the gated product are recomputed.
  if (layout.recompute == Recompute::kSelective && model.flash_attention)
    per_layer -= T * (kBf16 * 2 * h / sp_split + (model.gated_mlp ? kBf16 * F * k_active / tp : 0));
  const double kept_scores = model.flash_attention ? 0
                             : (model.dropout ? 5.0 : 2.0) * static_cast<double>(c.num_attention_heads) * s;
  const double scores_bytes = b * kept_scores * (s / cp) / tp;
  if (layout.recompute == Recompute::kNone) per_layer += scores_bytes;
  const double layer_input = T * h * kBf16 / sp_split;
  ActivationSizes a;
  a.kept_per_layer = full ? layer_input : per_layer;
  a.recomputed_layer = full ? per_layer + scores_bytes : 0;
  a.chunk_output = layout.software.free_pipeline_outputs || layout.pp == 1 ? 0 : layer_input;
  a.logits = T * V / tp * (kBf16 + 4);
  return a;
}

double activations_on_rank(const ActivationSizes& a, const Layout& layout, const PipelineShape& shape, int64_t rank,
                           int64_t layers, int64_t micro_batches) {
  const double chunks = in_flight_chunks(shape, rank, micro_batches);
  const double vp = static_cast<double>(layout.vp);
  double bytes = chunks * (static_cast<double>(layers) / vp * a.kept_per_layer + a.chunk_output);
  if (layout.recompute == Recompute::kFull) bytes += a.recomputed_layer;
  if (rank == layout.pp - 1) bytes += a.logits;
  return bytes;
}

MemoryBreakdown memory_on_rank(const ActivationSizes& a, const Layout& layout, const PipelineShape& shape,
                               const CommGroups& groups, const ParameterShare& params, int64_t rank, int64_t layers,
                               double vocab_params, int64_t micro_batches) {
  const double dense_shard = static_cast<double>(groups.dense_dp.n);
  const double expert_shard = static_cast<double>(groups.expert_dp.n);
  const double dense = static_cast<double>(layers) * params.dense_per_layer + vocab_params;
  const double expert = static_cast<double>(layers) * params.expert_per_layer;
  // ZeRO stage `stage_from` and above shard this state over the data-parallel group.
  auto sharded = [&](double bytes_per_param, int64_t stage_from) {
    const bool shard = layout.zero >= stage_from;
    return bytes_per_param * (dense / (shard ? dense_shard : 1) + expert / (shard ? expert_shard : 1));
  };
  MemoryBreakdown mem;
  mem.weights_bytes = sharded(kWeightBytes, 3);
  mem.grads_bytes = sharded(layout.software.main_grad_bytes, 2);
  mem.optimizer_bytes = sharded(kOptimizerBytes, 1);
  mem.activations_bytes = activations_on_rank(a, layout, shape, rank, layers, micro_batches);
  mem.buffers_bytes = kFixedBuffersBytes + kFragmentation * mem.activations_bytes;
  mem.total_bytes =
      mem.weights_bytes + mem.grads_bytes + mem.optimizer_bytes + mem.activations_bytes + mem.buffers_bytes;
  mem.pipeline_rank = rank;
  return mem;
}

MemoryBreakdown memory_per_gpu(const PlanModel& model, const GpuSpec& gpu, const Layout& layout,
                               const MicroBatchDims& d, const CommGroups& groups, const PipelineShape& shape,
                               const ParameterShare& params, int64_t micro_batches) {
  const ActivationSizes a = activation_sizes(model, layout, d);
  auto on = [&](int64_t rank, int64_t layers, double vocab_params) {
    return memory_on_rank(a, layout, shape, groups, params, rank, layers, vocab_params, micro_batches);
  };
  MemoryBreakdown mem = on(0, shape.first_layers, params.vocab);
  if (layout.pp > 1) {
    const MemoryBreakdown last = on(layout.pp - 1, shape.last_layers, params.vocab);
    if (last.total_bytes > mem.total_bytes) mem = last;
    if (layout.pp > 2) {
      const MemoryBreakdown middle = on(1, shape.middle_layers, 0);
      if (middle.total_bytes > mem.total_bytes) mem = middle;
    }
  } else if (!params.tied) {
    mem = on(0, shape.first_layers, 2 * params.vocab);  // embedding and output matrix
  }
  mem.capacity_bytes = gpu.hbm_bytes;
  mem.fits = mem.total_bytes <= mem.capacity_bytes;
  return mem;
}

}  // namespace sc::plan
