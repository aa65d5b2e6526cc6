#include "plan/step_time.h"

#include <gtest/gtest.h>

#include "plan/collectives.h"
#include "plan/kernel_model.h"

namespace sc::plan {
namespace {

// A stage made of `gemm` seconds of matmuls and `tp` seconds of TP traffic.
MicroBatchParts parts(double gemm, double tp = 0) {
  MicroBatchParts p;
  p.gemm = gemm, p.tp = tp;
  return p;
}

TEST(PlanStepTime, ThePaceIsTheSlowestPipelineRank) {
  StageWork w;
  w.layer = parts(1.0, 0.5);
  w.embedding = parts(0.25);
  w.head = parts(2.0);
  // No pipeline: one rank does everything.
  EXPECT_DOUBLE_EQ(pipeline_pace(w, pipeline_shape(4, 1, 1, false)).total(), 4 * 1.5 + 0.25 + 2.0);
  // Two ranks of 2 layers: the last, with the output layer, is slower.
  const MicroBatchParts two = pipeline_pace(w, pipeline_shape(4, 2, 1, false));
  EXPECT_DOUBLE_EQ(two.total(), 2 * 1.5 + 2.0);
  EXPECT_DOUBLE_EQ(two.gemm, 2 * 1.0 + 2.0);  // the parts are that rank's
  EXPECT_DOUBLE_EQ(two.tp, 2 * 0.5);
  // With a light head the first rank, with the embedding, sets the pace.
  w.head = parts(0.125);
  EXPECT_DOUBLE_EQ(pipeline_pace(w, pipeline_shape(4, 2, 1, false)).total(), 2 * 1.5 + 0.25);
  // Balanced (Llama 3): 6 layers + embedding + loss in 4 ranks of 2 slots;
  // the middle ranks, with 2 full layers, are the slowest.
  const PipelineShape balanced = pipeline_shape(6, 4, 1, true);
  ASSERT_EQ(balanced.middle_layers, 2);
  EXPECT_DOUBLE_EQ(pipeline_pace(w, balanced).total(), 2 * 1.5);
}

TEST(PlanStepTime, DataParallelTrafficHidesBehindComputeExceptTheLastShare) {
  DataParallelTraffic t;
  t.reduce_s = 3, t.gather_s = 0;
  // Not overlapped: all of it.
  EXPECT_DOUBLE_EQ(exposed_data_parallel_s(t, false, 3, 1, 4), 3);
  // Overlapped, one reduction after 4 micro-batches of 1 s forward and 2 s
  // backward: the reduction starts with the last backward chunk (2 s) and
  // runs 1 s past it.
  EXPECT_DOUBLE_EQ(exposed_data_parallel_s(t, true, 3, 1, 4), 1);
  // ZeRO 2 reduces after every micro-batch: 4 reductions of 0.75 s, each
  // hidden behind a 2 s backward.
  t.reduce_count = 4;
  EXPECT_DOUBLE_EQ(exposed_data_parallel_s(t, true, 3, 1, 4), 0);
  // Without compute nothing hides.
  t.gather_s = 2, t.gather_count = 8;
  EXPECT_NEAR(exposed_data_parallel_s(t, true, 0, 1, 4), 5, 1e-12);
  // Interleaved in 2 chunks of 1.5 s: the last chunk carries half of the
  // reduction, 1.5 s, behind its 1 s backward.
  t = DataParallelTraffic{};
  t.reduce_s = 3;
  EXPECT_DOUBLE_EQ(exposed_data_parallel_s(t, true, 1.5, 2, 4), 0.5);
}

TEST(PlanStepTime, DataParallelTrafficByZeroStage) {
  const ClusterSpec cluster = *cluster_preset("dgx-h100");
  Layout layout;
  layout.tp = 8, layout.dp = 16;
  const CommGroups groups = comm_groups(cluster, layout);
  ParameterShare params;
  params.max_rank_dense = 1e9;
  const double fp32_grads = 4e9, bf16_weights = 2e9;
  layout.zero = 0;
  DataParallelTraffic t = data_parallel_traffic(cluster, layout, groups, params, 8);
  EXPECT_DOUBLE_EQ(t.reduce_s, all_reduce_time_s(cluster, groups.dense_dp, fp32_grads));
  EXPECT_EQ(t.gather_s, 0);
  layout.zero = 1;  // reduce-scatter the gradients, all-gather the new weights
  t = data_parallel_traffic(cluster, layout, groups, params, 8);
  EXPECT_DOUBLE_EQ(t.reduce_s, all_reduce_time_s(cluster, groups.dense_dp, fp32_grads) / 2);
  EXPECT_DOUBLE_EQ(t.gather_s, all_reduce_time_s(cluster, groups.dense_dp, bf16_weights) / 2);
  layout.zero = 3;  // every micro-batch: reduce once, gather for forward and backward
  t = data_parallel_traffic(cluster, layout, groups, params, 8);
  EXPECT_EQ(t.reduce_count, 8);
  EXPECT_EQ(t.gather_count, 16);
  EXPECT_DOUBLE_EQ(t.gather_s, 16 * all_reduce_time_s(cluster, groups.dense_dp, bf16_weights) / 2);
}

TEST(PlanStepTime, PipelineTransfersBlockOrHideBehindTheChunk) {
  const ClusterSpec cluster = *cluster_preset("dgx-h100");
  const PlanModel model = *resolve_plan_model("llama3-8b");
  Layout layout;
  layout.tp = 8, layout.pp = 4, layout.vp = 2, layout.dp = 1;
  const RunSpec run{8192, 1 << 22, 1e12};
  const MicroBatchDims d = micro_batch_dims(model, layout, run);
  const CommGroups groups = comm_groups(cluster, layout);
  const PipelineTransfers async = pipeline_transfers(cluster, layout, d, groups, 1.0);
  // The T x h activation split over tp, across nodes (8 GPUs per stage).
  EXPECT_DOUBLE_EQ(async.hop_s, p2p_time_s(cluster, false, 8192.0 * 4096 * 2 / 8));
  EXPECT_EQ(async.per_micro_batch_s, 0);  // a 1 s chunk hides it
  layout.software = *software_stack("megatron-2021");  // blocking, and no SP: gather the activation back
  const PipelineTransfers blocking = pipeline_transfers(cluster, layout, d, groups, 1.0);
  EXPECT_DOUBLE_EQ(blocking.hop_s,
                   async.hop_s + all_gather_time_s(cluster, groups.tp, 8192.0 * 4096 * 2));
  EXPECT_DOUBLE_EQ(blocking.per_micro_batch_s, 2 * 2 * blocking.hop_s);  // each way, each of 2 chunks
  layout.pp = 1, layout.vp = 1;
  EXPECT_EQ(pipeline_transfers(cluster, layout, d, groups, 1.0).hop_s, 0);
}

TEST(PlanStepTime, TheOptimizerStreamsItsShardOfTheStates) {
  const ClusterSpec cluster = *cluster_preset("dgx-h100");
  Layout layout;
  layout.tp = 8, layout.dp = 16, layout.zero = 0;
  const CommGroups groups = comm_groups(cluster, layout);
  ParameterShare params;
  params.max_rank_dense = 1e9;
  // Weights, grads, master, m, v: ~32 bytes read and written per parameter.
  EXPECT_DOUBLE_EQ(optimizer_step_s(cluster.gpu, layout, groups, params), stream_time_s(cluster.gpu, 32e9));
  layout.zero = 1;
  EXPECT_NEAR(optimizer_step_s(cluster.gpu, layout, groups, params), stream_time_s(cluster.gpu, 32e9) / 16, 1e-15);
}

TEST(PlanStepTime, TheStepIsItsParts) {
  const ClusterSpec cluster = *cluster_preset("dgx-h100");
  const PlanModel model = *resolve_plan_model("llama3-8b");
  Layout layout;
  layout.tp = 4, layout.pp = 4, layout.vp = 2, layout.dp = 4, layout.software = *software_stack("megatron-2021");
  const RunSpec run{8192, 1 << 22, 1e12};
  const MicroBatchDims d = micro_batch_dims(model, layout, run);
  const CommGroups groups = comm_groups(cluster, layout);
  const PipelineShape shape = pipeline_shape(32, 4, 2, false);
  const ParameterShare params = parameter_share(count_parameters(model.config), d, shape);
  const StageWork work = stage_work(model, cluster, layout, d, groups, params, 1.0);
  const int64_t m = micro_batches_per_step(layout, run);
  const StepBreakdown st = step_breakdown(cluster, layout, d, groups, shape, params, work, m);
  const double parts = st.gemm_s + st.attention_s + st.elementwise_s + st.grad_accum_s + st.tp_comm_s +
                       st.pp_comm_s + st.ep_comm_s + st.cp_comm_s + st.dp_comm_s + st.bubble_s + st.optimizer_s;
  EXPECT_NEAR(st.step_s, parts, 1e-12 * st.step_s);
  // Blocking sends and no DP overlap (2021): both on the critical path.
  EXPECT_GT(st.pp_comm_s, 0);
  EXPECT_GT(st.dp_comm_s, 0);
  // The bubble: (p - 1) / v micro-batch times of the pace.
  const double micro_batch_s = (st.step_s - st.bubble_s - st.dp_comm_s - st.optimizer_s) / static_cast<double>(m);
  EXPECT_NEAR(st.bubble_s, 3.0 / 2 * micro_batch_s, 1e-9 * st.bubble_s);
}

}  // namespace
}  // namespace sc::plan
