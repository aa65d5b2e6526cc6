#include "plan/layer_time.h"

#include <gtest/gtest.h>

#include "plan/collectives.h"
#include "plan/kernel_model.h"
#include "plan/plan_test_util.h"

namespace sc::plan {
namespace {

using Resolved = testing::ResolvedLayout;

Resolved resolved(const std::string& model_name, const std::string& cluster_name, int64_t gpus, Layout layout,
                  int64_t seq_len = 8192) {
  return testing::resolve_layout(model_name, cluster_name, gpus, layout, seq_len);
}

TEST(PlanLayerTime, FusedAttentionDoesHalfTheCausalSquareAtTheKernelsEfficiency) {
  Layout layout;
  layout.tp = 2;
  const Resolved s = resolved("llama3-8b", "dgx-h100", 8, layout);
  const GpuSpec& gpu = s.cluster.gpu;
  // 4 T (s/2) heads D FLOPs forward: QK^T and PV over the unmasked half.
  const double flops = 4 * 8192.0 * 4096 * (32 / 2) * 128;
  const AttentionCore fa3 = attention_core(gpu, s.model, s.layout.software, s.dims);
  EXPECT_NEAR(fa3.forward_s, flops / (gpu.bf16_flops * gpu.fa3_efficiency), 1e-15);
  EXPECT_NEAR(fa3.backward_s, 2.5 * fa3.forward_s, 1e-15);
  const AttentionCore fa2 = attention_core(gpu, s.model, *software_stack("llama3-2024"), s.dims);
  EXPECT_NEAR(fa2.forward_s / fa3.forward_s, gpu.fa3_efficiency / gpu.fa2_efficiency, 1e-12);
}

TEST(PlanLayerTime, UnfusedAttentionStreamsTheScoresAndTheBackwardCostsMore) {
  Layout layout;
  layout.tp = 8;
  const Resolved s = resolved("gpt3-175b", "selene-a100", 8, layout, 2048);
  const AttentionCore a = attention_core(s.cluster.gpu, s.model, s.layout.software, s.dims);
  // The score streaming alone: 12 heads x 2048^2 scores x 11 bytes forward.
  EXPECT_GT(a.forward_s, stream_time_s(s.cluster.gpu, 12 * 2048.0 * 2048 * 11));
  EXPECT_GT(a.backward_s, a.forward_s);
  EXPECT_LT(a.backward_s, 3 * a.forward_s);
}

TEST(PlanLayerTime, GradientAccumulationReadsTheFreshGradientAndUpdatesTheMainOne) {
  const GpuSpec gpu = *gpu_by_name("h100-sxm");
  SoftwareStack stack = *software_stack("llama3-2024");  // PyTorch: a separate add
  ASSERT_FALSE(stack.fused_grad_accumulation);
  // bf16 read 2 B + fp32 main grad read and written 2 x 4 B.
  EXPECT_DOUBLE_EQ(grad_accumulation_s(gpu, stack, 1e9), stream_time_s(gpu, 10e9));
  EXPECT_EQ(grad_accumulation_s(gpu, *software_stack("current"), 1e9), 0);
}

TEST(PlanLayerTime, WithoutSequenceParallelismEveryTpRankRepeatsTheNorms) {
  Layout layout;
  layout.tp = 8;
  const Resolved s = resolved("llama3-8b", "dgx-h100", 8, layout);
  const ElementwiseWork sp = elementwise_work(s.cluster.gpu, s.model, Recompute::kNone, s.dims);
  MicroBatchDims no_sp = s.dims;
  no_sp.sp_split = 1;
  const ElementwiseWork repeated = elementwise_work(s.cluster.gpu, s.model, Recompute::kNone, no_sp);
  EXPECT_GT(repeated.forward_s, 2 * sp.forward_s);
  EXPECT_EQ(sp.selective_recompute_s, 0);  // nothing is recomputed without recompute
  EXPECT_GT(elementwise_work(s.cluster.gpu, s.model, Recompute::kSelective, s.dims).selective_recompute_s, 0);
}

TEST(PlanLayerTime, CollectivesOnlyForTheDimensionsThatAreSplit) {
  Layout layout;
  layout.tp = 8;
  const Resolved s = resolved("llama3-8b", "dgx-h100", 64, layout);
  const LayerCollectives one = layer_collectives(s.cluster, s.model, s.groups, s.dims);
  // One all-reduce's worth of the T x h activation in bf16 on the TP group.
  EXPECT_DOUBLE_EQ(one.tp_s, all_reduce_time_s(s.cluster, s.groups.tp, 8192.0 * 4096 * 2));
  EXPECT_EQ(one.ep_s, 0);  // dense: no expert parallelism
  EXPECT_EQ(one.cp_s, 0);  // cp 1
  Layout with_cp = layout;
  with_cp.cp = 2;
  const Resolved c = resolved("llama3-8b", "dgx-h100", 64, with_cp);
  EXPECT_GT(layer_collectives(c.cluster, c.model, c.groups, c.dims).cp_s, 0);
}

TEST(PlanLayerTime, TheSlowestGpuSlowsKernelsNotCommunication) {
  Layout layout;
  layout.tp = 8, layout.ep = 8;
  const Resolved s = resolved("grok-1", "dgx-h100", 512, layout);
  const StageWork median = stage_work(s.model, s.cluster, s.layout, s.dims, s.groups, s.params, 1.0);
  const StageWork slow = stage_work(s.model, s.cluster, s.layout, s.dims, s.groups, s.params, 0.5);
  EXPECT_NEAR(slow.layer.gemm, 2 * median.layer.gemm, 1e-15);
  EXPECT_NEAR(slow.layer.attention, 2 * median.layer.attention, 1e-15);
  EXPECT_NEAR(slow.head.gemm, 2 * median.head.gemm, 1e-15);
  EXPECT_NEAR(slow.embedding.elementwise, 2 * median.embedding.elementwise, 1e-15);
  EXPECT_EQ(slow.layer.tp, median.layer.tp);
  EXPECT_EQ(slow.layer.ep, median.layer.ep);
  EXPECT_GT(median.layer.ep, 0);  // every Grok-1 layer is MoE: tokens cross the EP group
  // Forward + backward of the logits GEMM: 3 forward GEMMs' time.
  EXPECT_DOUBLE_EQ(median.head.gemm, 3 * gemm_time_s(s.cluster.gpu, 8192, 131072.0 / 8, 6144));
}

TEST(PlanLayerTime, FullRecomputeRepeatsTheForward) {
  Layout layout;
  layout.tp = 8;
  layout.recompute = Recompute::kNone;
  const Resolved none = resolved("llama3-8b", "dgx-h100", 8, layout);
  layout.recompute = Recompute::kFull;
  const Resolved full = resolved("llama3-8b", "dgx-h100", 8, layout);
  auto layer = [](const Resolved& s) {
    return stage_work(s.model, s.cluster, s.layout, s.dims, s.groups, s.params, 1.0).layer;
  };
  const MicroBatchParts a = layer(none), b = layer(full);
  EXPECT_NEAR(b.gemm / a.gemm, 4.0 / 3, 1e-12);  // forward + backward (2x) + forward again
  EXPECT_NEAR(b.tp / a.tp, 6.0 / 4, 1e-12);
  const LayerGemms g = layer_forward_gemms(none.cluster.gpu, none.model, none.dims);
  EXPECT_NEAR(a.gemm, 3 * g.dense_s, 1e-15);
  EXPECT_EQ(g.moe_s, 0);
}

}  // namespace
}  // namespace sc::plan
