#include "plan/gpu_share.h"

#include <gtest/gtest.h>

namespace sc::plan {
namespace {

// Llama 3 8B: h 4096, 32 query / 8 KV heads of 128, F 14336, V 128256, 32
// layers, untied. Per layer: attention 4096 x (4096 + 1024 + 1024 + 4096),
// SwiGLU 3 x 4096 x 14336, two norms of 4096.
constexpr double kLlama8bLayer = 4096.0 * 10240 + 3.0 * 4096 * 14336 + 2 * 4096;
constexpr double kLlama8bVocab = 128256.0 * 4096;

TEST(PlanGpuShare, DimsOfOneMicroBatchOnOneGpu) {
  const PlanModel model = *resolve_plan_model("llama3-8b");
  Layout layout;
  layout.tp = 4, layout.cp = 2, layout.micro_batch = 3;
  const MicroBatchDims d = micro_batch_dims(model, layout, RunSpec{8192, 1 << 24, 1e12});
  EXPECT_EQ(d.tokens, 3.0 * 8192 / 2);  // b s / cp
  EXPECT_EQ(d.query_width, 4096);
  EXPECT_EQ(d.kv_width, 1024);
  EXPECT_EQ(d.experts, 1);
  EXPECT_EQ(d.experts_per_token, 1);
  EXPECT_EQ(d.sp_split, 4);
  layout.software.sequence_parallel = false;
  EXPECT_EQ(micro_batch_dims(model, layout, RunSpec{8192, 1 << 24, 1e12}).sp_split, 1);
}

TEST(PlanGpuShare, GroupsFollowMegatronRankOrder) {
  const ClusterSpec cluster = *cluster_preset("dgx-h100");  // 8 GPUs per node
  Layout layout;
  layout.tp = 2, layout.cp = 2, layout.dp = 4, layout.pp = 4;
  const CommGroups g = comm_groups(cluster, layout);
  EXPECT_EQ(g.tp.n, 2);
  EXPECT_EQ(g.tp.in_node, 2);
  EXPECT_EQ(g.cp.n, 2);
  EXPECT_EQ(g.cp.span_gpus, 4);  // cp ranks tp apart
  // The dense gradient group is dp x cp ranks, tp apart: 8 ranks over 2 nodes.
  EXPECT_EQ(g.dense_dp.n, 8);
  EXPECT_EQ(g.dense_dp.in_node, 4);
  EXPECT_EQ(g.dense_dp.span_gpus, 16);
  EXPECT_EQ(g.expert_dp.n, 8);  // ep 1
  // 16 GPUs per pipeline stage: neighbouring stages are in other nodes.
  EXPECT_FALSE(g.pp_inside_node);
  layout.dp = 1;
  EXPECT_TRUE(comm_groups(cluster, layout).pp_inside_node);  // 4 GPUs per stage, 2 stages per node
}

TEST(PlanGpuShare, ParametersPerLayerAndOnTheFullestRank) {
  const PlanModel model = *resolve_plan_model("llama3-8b");
  const ParameterCounts counts = count_parameters(model.config);
  Layout layout;
  layout.tp = 2, layout.pp = 4;
  const MicroBatchDims d = micro_batch_dims(model, layout, RunSpec{8192, 1 << 24, 1e12});
  const PipelineShape shape = pipeline_shape(32, 4, 1, false);
  const ParameterShare p = parameter_share(counts, d, shape);
  EXPECT_DOUBLE_EQ(p.per_layer, kLlama8bLayer / 2);
  EXPECT_EQ(p.expert_per_layer, 0);
  EXPECT_DOUBLE_EQ(p.vocab, kLlama8bVocab / 2);
  EXPECT_FALSE(p.tied);
  // 8 layers per rank; the first holds the embedding, the last the output.
  EXPECT_DOUBLE_EQ(p.max_rank_dense, (8 * kLlama8bLayer + kLlama8bVocab) / 2);
  EXPECT_EQ(p.max_rank_expert, 0);
}

TEST(PlanGpuShare, ExpertsSplitOverExpertParallelism) {
  // Grok-1: 64 MoE layers of 8 experts (3 x 6144 x 32768 each), h 6144,
  // 48 query / 8 KV heads of 128, sandwich norms (4), router 6144 x 8.
  const PlanModel model = *resolve_plan_model("grok-1");
  const ParameterCounts counts = count_parameters(model.config);
  Layout layout;
  layout.tp = 4, layout.ep = 8, layout.pp = 8;
  const MicroBatchDims d = micro_batch_dims(model, layout, RunSpec{8192, 1 << 24, 1e12});
  EXPECT_EQ(d.experts, 8);
  EXPECT_EQ(d.experts_per_token, 2);
  const ParameterShare p = parameter_share(counts, d, pipeline_shape(64, 8, 1, false));
  const double experts = 8 * 3.0 * 6144 * 32768;
  const double dense = 6144.0 * (6144 + 2 * 1024) + 6144.0 * 6144 + 4 * 6144 + 6144 * 8;
  EXPECT_DOUBLE_EQ(p.expert_per_layer, experts / (4 * 8));
  EXPECT_DOUBLE_EQ(p.dense_per_layer, dense / 4);
  EXPECT_DOUBLE_EQ(p.max_rank_expert, 8 * experts / 32);
  EXPECT_TRUE(p.tied);
}

TEST(PlanGpuShare, MicroBatchesPerStep) {
  Layout layout;
  layout.dp = 8, layout.micro_batch = 2;
  // 2^24 tokens = 2048 sequences of 8192, over 8 replicas of 2 sequences.
  EXPECT_EQ(micro_batches_per_step(layout, RunSpec{8192, 1 << 24, 1e12}), 128);
}

}  // namespace
}  // namespace sc::plan
