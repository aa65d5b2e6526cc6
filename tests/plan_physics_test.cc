// The pieces of the planner's physics one by one: pipeline placement and
// in-flight micro-batches, collectives across pods, the slowest-GPU factor,
// software generations, presets, sweep parsing and the report's escaping.
#include <gtest/gtest.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "core/markup_escape.h"
#include "plan/collectives.h"
#include "plan/cost_model.h"
#include "plan/kernel_model.h"
#include "plan/pipeline.h"
#include "plan/svg_chart.h"
#include "plan/sweep.h"
#include "plan/validation.h"

namespace sc::plan {
namespace {

TEST(PlanPipeline, LlamaBalanceLeavesOneLayerChunksAndLighterEnds) {
  // 126 layers + embedding + loss = 128 slots = 16 ranks x 8 chunks of 1.
  const PipelineShape s = pipeline_shape(126, 16, 8, /*balance=*/true);
  EXPECT_EQ(s.first_layers, 7);
  EXPECT_EQ(s.middle_layers, 8);
  EXPECT_EQ(s.last_layers, 7);
  const PipelineShape plain = pipeline_shape(96, 16, 1, false);
  EXPECT_EQ(plain.first_layers, 6);
  EXPECT_EQ(plain.last_layers, 6);
}

TEST(PlanPipeline, InFlightMicroBatchesFollowTheSchedule) {
  const PipelineShape one_f_one_b = pipeline_shape(96, 16, 1, false);
  EXPECT_EQ(in_flight_chunks(one_f_one_b, 0, 192), 16);  // first stage: p micro-batches
  EXPECT_EQ(in_flight_chunks(one_f_one_b, 15, 192), 1);  // last stage: one
  EXPECT_EQ(in_flight_chunks(one_f_one_b, 0, 4), 4);     // fewer micro-batches than stages
  // Interleaved: 2(p-1) + (v-1)p + 1 chunks, i.e. p (1 + (p-1)/(pv)) stages'
  // worth (Korthikanti et al. 2022) ...
  const PipelineShape interleaved = pipeline_shape(128, 16, 2, false);
  EXPECT_EQ(in_flight_chunks(interleaved, 0, 1000), 2 * 15 + 16 + 1);
  // ... but never more than the step's m x v chunks.
  EXPECT_EQ(in_flight_chunks(interleaved, 0, 16), 32);
}

// Megatron's (interleaved) 1F1B order on every rank, run as events: an
// operation starts when its rank is free and its input has arrived,
// `transfer` after the operation producing it ended. Returns the step time.
double simulate_pipeline(int p, int v, int m, double forward, double backward, double transfer) {
  struct Op {
    bool fwd;
    int chunk, mb;
  };
  const int total = m * v;
  auto fwd_op = [&](int k) { return Op{true, (k / p) % v, (k / (p * v)) * p + k % p}; };
  auto bwd_op = [&](int k) {
    Op op = fwd_op(k);
    return Op{false, v - 1 - op.chunk, op.mb};
  };
  std::vector<std::vector<Op>> order(p);
  for (int r = 0; r < p; ++r) {
    const int warmup = std::min(total, v == 1 ? p - r - 1 : 2 * (p - r - 1) + (v - 1) * p);
    for (int k = 0; k < warmup; ++k) order[r].push_back(fwd_op(k));
    for (int i = 0; i < total - warmup; ++i) order[r].push_back(fwd_op(warmup + i)), order[r].push_back(bwd_op(i));
    for (int i = total - warmup; i < total; ++i) order[r].push_back(bwd_op(i));
  }
  auto key = [&](bool fwd, int chunk, int mb, int rank) {
    return ((fwd ? 0 : 1) * v + chunk) * (m * p) + mb * p + rank;
  };
  std::vector<double> end(static_cast<size_t>(2 * v * m * p), -1);
  std::vector<size_t> next(p, 0);
  std::vector<double> clock(p, 0);
  for (bool moved = true; moved;) {
    moved = false;
    for (int r = 0; r < p; ++r) {
      while (next[r] < order[r].size()) {
        const Op op = order[r][next[r]];
        // Forward input: the previous rank's same chunk, or the last rank's previous chunk.
        // Backward input: the next rank's same chunk, or the first rank's next chunk; and its own forward.
        std::vector<std::pair<int, double>> inputs;
        if (op.fwd) {
          if (r > 0) inputs.push_back({key(true, op.chunk, op.mb, r - 1), transfer});
          else if (op.chunk > 0) inputs.push_back({key(true, op.chunk - 1, op.mb, p - 1), transfer});
        } else {
          inputs.push_back({key(true, op.chunk, op.mb, r), 0.0});
          if (r < p - 1) inputs.push_back({key(false, op.chunk, op.mb, r + 1), transfer});
          else if (op.chunk < v - 1) inputs.push_back({key(false, op.chunk + 1, op.mb, 0), transfer});
        }
        double start = clock[r];
        bool ready = true;
        for (const auto& [k, delay] : inputs) {
          if (end[static_cast<size_t>(k)] < 0) ready = false;
          else start = std::max(start, end[static_cast<size_t>(k)] + delay);
        }
        if (!ready) break;
        clock[r] = start + (op.fwd ? forward : backward);
        end[static_cast<size_t>(key(op.fwd, op.chunk, op.mb, r))] = clock[r];
        ++next[r];
        moved = true;
      }
    }
  }
  for (int r = 0; r < p; ++r) EXPECT_EQ(next[r], order[r].size()) << "the schedule deadlocked";
  return *std::max_element(clock.begin(), clock.end());
}

TEST(PlanPipeline, OverheadMatchesAnEventSimulationOfTheSchedule) {
  struct Case {
    int p, v, m;
    double forward, backward, transfer;
  };
  // Llama 3 at 16,384 and 8,192 GPUs (one-layer chunks), NVIDIA's 405B
  // layout, transfers as long as a chunk's forward, no transfer time; then
  // plain 1F1B, where the closed form is within one transfer.
  for (const Case& c : {Case{16, 8, 16, 14, 28, 0.9}, Case{16, 8, 32, 14, 28, 0.9}, Case{9, 7, 63, 20, 40, 0.5},
                        Case{8, 4, 8, 5, 10, 5}, Case{2, 2, 4, 3, 6, 0}, Case{4, 1, 12, 10, 20, 1},
                        Case{16, 1, 64, 10, 20, 0.5}, Case{3, 1, 7, 10, 20, 2}, Case{8, 1, 4, 10, 20, 1}}) {
    const double micro_batch = c.v * (c.forward + c.backward);
    const double simulated = simulate_pipeline(c.p, c.v, c.m, c.forward, c.backward, c.transfer);
    const double modelled = c.m * micro_batch + pipeline_overhead_s(c.p, c.v, c.m, micro_batch, c.transfer, true);
    const double tolerance = c.v > 1 ? 1e-9 * modelled : c.transfer;
    EXPECT_NEAR(simulated, modelled, tolerance) << "p " << c.p << " v " << c.v << " m " << c.m;
  }
  // Blocking transfers sit inside the micro-batch time: nothing is added.
  EXPECT_DOUBLE_EQ(pipeline_overhead_s(16, 8, 16, 42, 0.9, false), 15.0 / 8 * 42);
}

TEST(PlanCollectives, RingsCrossOversubscribedPodsOnlyAtTheirEnds) {
  auto cluster = cluster_preset("llama3-h100");
  ASSERT_TRUE(cluster.ok());
  // 128 data-parallel ranks, one per 128-GPU replica, spanning 16,384 GPUs
  // over 1:7 oversubscribed pods: the ring leaves each pod once.
  const Group wide = strided_group(*cluster, 128, 128);
  const Group inside_pod = strided_group(*cluster, 16, 128);
  const double bytes = 1e9;
  const double per_member_wide = all_reduce_time_s(*cluster, wide, bytes);
  const double per_member_inside = all_reduce_time_s(*cluster, inside_pod, bytes);
  EXPECT_LT(per_member_wide, per_member_inside * 1.2);
  // An all-to-all over the same span does pay the oversubscription.
  EXPECT_GT(all_to_all_time_s(*cluster, wide, bytes), 3 * all_to_all_time_s(*cluster, inside_pod, bytes));
}

TEST(PlanCollectives, BusBandwidthRisesWithMessageSize) {
  auto cluster = cluster_preset("colossus-100k");
  ASSERT_TRUE(cluster.ok());
  const Group node = strided_group(*cluster, 8, 1);
  const double small = all_reduce_bus_bandwidth(*cluster, node, 64e3);
  const double large = all_reduce_bus_bandwidth(*cluster, node, 1e9);
  EXPECT_LT(small, large / 4);
  EXPECT_LT(large, cluster->gpu.nvlink_bytes_per_s);  // never above the link
}

TEST(PlanCluster, TheSlowestOfMoreGpusIsSlower) {
  auto cluster = cluster_preset("colossus-100k");
  ASSERT_TRUE(cluster.ok());
  EXPECT_EQ(cluster->slowest_gpu_factor(1), 1.0);
  double previous = 1.0;
  for (int64_t n : {8, 1024, 16384, 100000}) {
    const double f = cluster->slowest_gpu_factor(n);
    EXPECT_LT(f, previous) << n;
    previous = f;
  }
  // Sinha et al.'s 8% spread: the slowest of 16k GPUs a few percent slow.
  EXPECT_GT(cluster->slowest_gpu_factor(16384), 0.93);
  EXPECT_LT(cluster->slowest_gpu_factor(16384), 0.97);
}

TEST(PlanCluster, EveryPresetResolvesUnderItsName) {
  for (const auto& name : cluster_preset_names()) {
    auto cluster = cluster_preset(name);
    ASSERT_TRUE(cluster.ok()) << name;
    EXPECT_EQ(cluster->name, name);
    EXPECT_GT(cluster->num_gpus, 0) << name;
  }
}

TEST(PlanModels, LlamaPresetsHaveMetasParameterCounts) {
  // Meta's model cards: Llama 3.1 8B 8.03B, 70B 70.6B, 405B 405.9B.
  for (const auto& [name, billions] :
       {std::pair{"llama3-8b", 8.03}, std::pair{"llama3-70b", 70.55}, std::pair{"llama3-405b", 405.85}}) {
    auto model = resolve_plan_model(name);
    ASSERT_TRUE(model.ok()) << name;
    const double params = static_cast<double>(model_facts(*model, 8192).counts.total) / 1e9;
    EXPECT_NEAR(params, billions, 0.01 * billions) << name;
  }
}

TEST(PlanModels, NemotronPresetHasTheReportsParameterCounts) {
  // Nemotron-4 340B report, section 2: 9.4B embedding and 331.6B other parameters.
  auto model = resolve_plan_model("nemotron4-340b");
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ParameterCounts counts = model_facts(*model, 4096).counts;
  const double embedding = static_cast<double>(counts.embedding + counts.output) / 1e9;
  EXPECT_NEAR(embedding, 9.4, 0.05);
  EXPECT_NEAR(static_cast<double>(counts.total) / 1e9 - embedding, 331.6, 0.5);
  EXPECT_FALSE(model->gated_mlp);
  EXPECT_EQ(model->mlp_width, 73728);
}

Plan plan_gpt3(const std::string& software) {
  auto model = resolve_plan_model("gpt3-175b");
  auto cluster = cluster_preset("selene-a100");
  EXPECT_TRUE(model.ok() && cluster.ok());
  cluster->num_gpus = 1024;
  Layout layout;
  layout.tp = 8, layout.pp = 16, layout.dp = 8, layout.zero = 0, layout.recompute = Recompute::kFull;
  layout.software = *software_stack(software);
  auto plan = plan_run(*model, *cluster, layout, RunSpec{2048, 1536 * 2048, 300e9});
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return *plan;
}

TEST(PlanSoftware, The2021StackRepeatsElementwiseWorkAndAddsGradientsSeparately) {
  const Plan old_stack = plan_gpt3("megatron-2021");
  const Plan current = plan_gpt3("current");
  // No sequence parallelism: norms, dropout and residual adds on all 8 TP ranks.
  EXPECT_GT(old_stack.step.elementwise_s, 3 * current.step.elementwise_s);
  EXPECT_GT(old_stack.step.grad_accum_s, 0);
  EXPECT_EQ(current.step.grad_accum_s, 0);
  EXPECT_EQ(current.step.pp_comm_s, 0);  // asynchronous sends hide behind compute
  EXPECT_GT(old_stack.step.pp_comm_s, 0);
  // fp16 main grads (2 B) against fp32 (4 B).
  EXPECT_NEAR(current.memory.grads_bytes / old_stack.memory.grads_bytes, 2.0, 0.01);
}

TEST(PlanSoftware, PyTorchAddsEveryMicroBatchsGradientToTheFp32OneWithAKernel) {
  // Llama 3's PyTorch stack: each micro-batch's fresh bf16 weight gradient is
  // read and added into the fp32 accumulator (read and written): 10 bytes
  // per local parameter per micro-batch, at the slowest GPU's pace.
  PublishedRun run;
  for (const auto& r : published_runs())
    if (r.name == "Llama 3 405B, 16384 H100") run = r;
  ASSERT_EQ(run.software, "llama3-2024");
  auto row = validate_run(run);
  ASSERT_TRUE(row.ok()) << row.status().message();
  const Plan& plan = row->plan;
  auto gpu = gpu_by_name(plan.gpu);
  auto cluster = cluster_preset(run.cluster);
  ASSERT_TRUE(gpu.ok() && cluster.ok());
  const double local_params = plan.memory.weights_bytes / 2;  // bf16 weights of the fullest (a middle) rank
  const double expected = static_cast<double>(plan.micro_batches) * stream_time_s(*gpu, local_params * 10) /
                          cluster->slowest_gpu_factor(run.gpus);
  EXPECT_NEAR(plan.step.grad_accum_s / expected, 1.0, 0.01) << plan.step.grad_accum_s << " s vs " << expected;
  // Megatron fuses the same accumulation into the wgrad GEMM (cuBLAS beta = 1).
  run.software = "current";
  auto fused = validate_run(run);
  ASSERT_TRUE(fused.ok());
  EXPECT_EQ(fused->plan.step.grad_accum_s, 0);
}

TEST(PlanSweep, SpecParsing) {
  auto ok = parse_sweep_spec("gpus=1024,4096,16384,100000");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, (std::vector<int64_t>{1024, 4096, 16384, 100000}));
  EXPECT_FALSE(parse_sweep_spec("gpus=").ok());
  EXPECT_FALSE(parse_sweep_spec("gpus=8,,16").ok());
  EXPECT_FALSE(parse_sweep_spec("gpus=-8").ok());
  EXPECT_FALSE(parse_sweep_spec("1024").ok());
}

TEST(PlanReport, LabelsAreEscaped) {
  EXPECT_EQ(markup_escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
  const std::string svg = stacked_bar_svg({{"<x>", 1, "#000"}}, "s");
  EXPECT_EQ(svg.find("<x>"), std::string::npos);
  EXPECT_NE(svg.find("&lt;x&gt;"), std::string::npos);
}

}  // namespace
}  // namespace sc::plan
