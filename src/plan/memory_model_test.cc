#include "plan/memory_model.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <tuple>

#include "plan/plan_test_util.h"

namespace sc::plan {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

using Resolved = testing::ResolvedLayout;

Resolved resolved(const std::string& model_name, const std::string& cluster_name, int64_t gpus, Layout layout,
                  int64_t seq_len = 8192) {
  return testing::resolve_layout(model_name, cluster_name, gpus, layout, seq_len);
}

MemoryBreakdown fullest(const Resolved& s) {
  return memory_per_gpu(s.model, s.cluster.gpu, s.layout, s.dims, s.groups, s.shape, s.params, s.micro_batches);
}

TEST(PlanMemoryModel, Llama8bOnEightGpusByHand) {
  Layout layout;  // tp 1, pp 1, dp 8, ZeRO 1, selective recompute, fused attention
  const Resolved s = resolved("llama3-8b", "dgx-h100", 8, layout);
  const MemoryBreakdown mem = fullest(s);
  // Parameters on the GPU: 32 layers of 218,112,000 plus the embedding and
  // the output matrix, 128256 x 4096 each (the final norm is not counted).
  const double params = 32 * 218112000.0 + 2 * 128256.0 * 4096;
  EXPECT_DOUBLE_EQ(mem.weights_bytes, 2 * params);
  EXPECT_DOUBLE_EQ(mem.grads_bytes, 4 * params);
  EXPECT_DOUBLE_EQ(mem.optimizer_bytes, 12 * params / 8);  // ZeRO 1 over dp 8
  // Kept per token per layer, bf16: the two norm inputs (h each; their
  // outputs are recomputed), Q and the attention output (4096 each), K and V
  // (1024 each), the gate and up projections (14336 each; their product is
  // recomputed).
  const double per_token_layer = 2.0 * (2 * 4096 + 2 * 4096 + 2 * 1024 + 2 * 14336);
  const double logits = 8192.0 * 128256 * (2 + 4);  // bf16 logits + fp32 loss input
  EXPECT_DOUBLE_EQ(mem.activations_bytes, 32 * 8192 * per_token_layer + logits);
  EXPECT_DOUBLE_EQ(mem.buffers_bytes, 2 * kGiB + 0.10 * mem.activations_bytes);
  const double states = mem.weights_bytes + mem.grads_bytes + mem.optimizer_bytes;
  EXPECT_DOUBLE_EQ(mem.total_bytes, states + mem.activations_bytes + mem.buffers_bytes);
  EXPECT_EQ(mem.capacity_bytes, s.cluster.gpu.hbm_bytes);
  EXPECT_EQ(mem.fits, mem.total_bytes <= mem.capacity_bytes);
  EXPECT_EQ(mem.pipeline_rank, 0);
}

TEST(PlanMemoryModel, ZeroStagesShardOptimizerThenGradsThenWeights) {
  Layout layout;
  const Resolved s = resolved("llama3-8b", "dgx-h100", 8, layout);
  const ActivationSizes a = activation_sizes(s.model, s.layout, s.dims);
  auto at_stage = [&](int64_t zero) {
    Layout l = s.layout;
    l.zero = zero;
    return memory_on_rank(a, l, s.shape, s.groups, s.params, 0, 32, 2 * s.params.vocab, s.micro_batches);
  };
  const MemoryBreakdown z0 = at_stage(0), z1 = at_stage(1), z2 = at_stage(2), z3 = at_stage(3);
  EXPECT_DOUBLE_EQ(z1.optimizer_bytes, z0.optimizer_bytes / 8);
  EXPECT_EQ(z1.grads_bytes, z0.grads_bytes);
  EXPECT_DOUBLE_EQ(z2.grads_bytes, z0.grads_bytes / 8);
  EXPECT_EQ(z2.weights_bytes, z0.weights_bytes);
  EXPECT_DOUBLE_EQ(z3.weights_bytes, z0.weights_bytes / 8);
  EXPECT_EQ(z3.activations_bytes, z0.activations_bytes);
}

TEST(PlanMemoryModel, TheFirstStageHoldsAMicroBatchPerStageInFlight) {
  Layout layout;
  layout.tp = 2, layout.pp = 4;
  const Resolved s = resolved("llama3-8b", "dgx-h100", 64, layout);
  ASSERT_GE(s.micro_batches, 4);
  const ActivationSizes a = activation_sizes(s.model, s.layout, s.dims);
  const double first = activations_on_rank(a, s.layout, s.shape, 0, 8, s.micro_batches);
  const double last = activations_on_rank(a, s.layout, s.shape, 3, 8, s.micro_batches);
  EXPECT_DOUBLE_EQ(first, 4 * (last - a.logits));  // 1F1B: p - rank micro-batches
  // The reported rank is the one with the most memory.
  const MemoryBreakdown mem = fullest(s);
  double most = 0;
  int64_t rank_with_most = -1;
  for (auto [rank, layers, vocab] : {std::tuple{int64_t{0}, s.shape.first_layers, s.params.vocab},
                                     std::tuple{int64_t{1}, s.shape.middle_layers, 0.0},
                                     std::tuple{int64_t{3}, s.shape.last_layers, s.params.vocab}}) {
    const MemoryBreakdown m =
        memory_on_rank(a, s.layout, s.shape, s.groups, s.params, rank, layers, vocab, s.micro_batches);
    if (m.total_bytes > most) {
      most = m.total_bytes;
      rank_with_most = rank;
    }
  }
  EXPECT_EQ(mem.pipeline_rank, rank_with_most);
  EXPECT_EQ(mem.total_bytes, most);
  EXPECT_EQ(mem.pipeline_rank, 0);  // 4 micro-batches of 8 layers outweigh the logits
}

TEST(PlanMemoryModel, FullRecomputeKeepsEachLayersInputAndOneWholeLayer) {
  Layout layout;
  layout.recompute = Recompute::kFull;
  const Resolved s = resolved("llama3-8b", "dgx-h100", 8, layout);
  const ActivationSizes a = activation_sizes(s.model, s.layout, s.dims);
  EXPECT_DOUBLE_EQ(a.kept_per_layer, 8192.0 * 4096 * 2);
  // The layer being recomputed keeps everything: 4 h-wide tensors, Q, K, V,
  // the attention output, and 3 F-wide MLP tensors.
  EXPECT_DOUBLE_EQ(a.recomputed_layer, 8192.0 * 2 * (4 * 4096 + 2 * 4096 + 2 * 1024 + 3 * 14336));
}

TEST(PlanMemoryModel, UnfusedAttentionWithoutRecomputeKeepsTheScores) {
  Layout layout;
  layout.tp = 8;
  layout.recompute = Recompute::kNone;
  const Resolved none = resolved("gpt3-175b", "selene-a100", 8, layout, 2048);
  layout.recompute = Recompute::kSelective;
  const Resolved selective = resolved("gpt3-175b", "selene-a100", 8, layout, 2048);
  const double kept_none = activation_sizes(none.model, none.layout, none.dims).kept_per_layer;
  const double kept_selective = activation_sizes(selective.model, selective.layout, selective.dims).kept_per_layer;
  // Scores, softmax output and dropout mask: 5 bytes per score (Korthikanti
  // et al. 2022: 5 a s^2 b), 96 heads over tp 8.
  EXPECT_DOUBLE_EQ(kept_none - kept_selective, 5.0 * 96 * 2048 * 2048 / 8);
}

}  // namespace
}  // namespace sc::plan
