#include "plan/cost_model.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace sc::plan {
namespace {

struct Inputs {
  PlanModel model = *resolve_plan_model("llama3-8b");  // 32 heads, 8 KV heads, F 14336, 32 layers
  ClusterSpec cluster = *cluster_preset("dgx-h100");
  RunSpec run{8192, 1 << 24, 1e12};                    // 2048 sequences
};

// The error validate_layout gives for `layout` on `gpus` GPUs, "" if none.
std::string layout_error(Layout layout, int64_t gpus, RunSpec run = Inputs{}.run, const std::string& model = "") {
  Inputs in;
  if (!model.empty()) in.model = *resolve_plan_model(model);
  in.cluster.num_gpus = gpus;
  return validate_layout(in.model, in.cluster, run, &layout).message();
}

TEST(PlanCostModel, LayoutErrorsNameTheFlagAtFault) {
  auto with = [](auto set) {
    Layout l;
    set(l);
    return l;
  };
  const struct {
    Layout layout;
    int64_t gpus;
    const char* error;
  } cases[] = {
      {with([](Layout& l) { l.tp = 0; }), 8, "--tp must be an integer in [1, 10000000] (got 0)"},
      {with([](Layout& l) { l.zero = 4; }), 8, "--zero must be an integer in [0, 3] (got 4)"},
      {with([](Layout& l) { l.tp = 16; }), 8, "--tp 16 x --pp 1 x --cp 1 = 16 is more than --gpus 8"},
      {with([](Layout& l) { l.tp = 2, l.dp = 2; }), 8, "--tp 2 x --pp 1 x --dp 2 x --cp 1 = 4 is not --gpus 8"},
      {with([](Layout& l) { l.tp = 3; }), 48, "--tp 3 does not divide num_attention_heads 32"},
      {with([](Layout& l) { l.pp = 16, l.vp = 4; }), 64, "--pp 16 x --vp 4 is more stages than num_hidden_layers 32"},
      {with([](Layout& l) { l.vp = 2; }), 8, "--vp 2 needs --pp > 1"},
      {with([](Layout& l) { l.ep = 2; }), 8, "--ep 2 needs a mixture-of-experts model (llama3-8b is dense)"},
      {with([](Layout& l) { l.cp = 3; }), 9, "--cp 3: --seq-len 8192 must split into 2 x cp equal chunks"},
      {with([](Layout& l) { l.micro_batch = 3; }), 8, "--micro-batch 3 does not divide the 2048 sequences"},
  };
  for (const auto& c : cases) {
    const std::string error = layout_error(c.layout, c.gpus);
    EXPECT_EQ(error.rfind(c.error, 0), 0u) << error << "\n  expected: " << c.error;
  }
  EXPECT_EQ(layout_error(Layout{}, 8, RunSpec{8192, 8192 * 3 + 1, 1e12}).rfind("--global-batch-tokens 24577 is not", 0),
            0u);
  EXPECT_EQ(layout_error(Layout{}, 8, RunSpec{8192, 1 << 24, 0}).rfind("--train-tokens must be a number in [1, ", 0), 0u);
  Inputs narrow;  // an MLP width with fewer factors of 2 than the heads
  narrow.model.mlp_width = 14000;
  narrow.cluster.num_gpus = 32;
  Layout wide_tp;
  wide_tp.tp = 32;
  EXPECT_EQ(validate_layout(narrow.model, narrow.cluster, narrow.run, &wide_tp).message(),
            "--tp 32 does not divide the MLP width 14000");
  Layout moe;
  moe.ep = 3;
  EXPECT_EQ(layout_error(moe, 24, Inputs{}.run, "grok-1").rfind("--ep 3 does not divide num_experts 8", 0), 0u);
  EXPECT_EQ(layout_error(Layout{}, 8), "");
}

TEST(PlanCostModel, DerivedDataParallelismIsTheLargestThatDividesTheBatch) {
  Inputs in;
  in.cluster.num_gpus = 60;
  in.run.global_batch_tokens = 8192 * 96;  // 96 sequences
  Layout layout;
  layout.tp = 4;
  ASSERT_TRUE(validate_layout(in.model, in.cluster, in.run, &layout).ok());
  EXPECT_EQ(layout.dp, 12);  // 15 would fit the GPUs, but 96 = 12 x 8
  layout = Layout{};
  layout.tp = 4;
  auto plan = plan_run(in.model, in.cluster, layout, in.run);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->num_gpus, 48);
  EXPECT_EQ(plan->idle_gpus, 12);
  EXPECT_EQ(plan->micro_batches, 8);
}

// dp used to be found by counting down from GPUs / (tp x pp x cp) one by one
// (a million steps per layout on 10^7 GPUs, weeks on 10^12); it is the
// largest divisor of the sequences per micro-batch within that limit.
TEST(PlanCostModel, DerivedDataParallelismMatchesTheCountDown) {
  Inputs in;
  for (int64_t gpus : {1, 7, 8, 60, 96, 1000, 4096, 100000}) {
    for (int64_t sequences : {1, 12, 96, 97, 2048, 3000, 1 << 20}) {
      for (int64_t micro_batch : {1, 2, 3}) {
        in.cluster.num_gpus = gpus;
        const RunSpec run{1, sequences, 1e12};  // one-token sequences
        Layout layout;
        layout.micro_batch = micro_batch;
        const Status status = validate_layout(in.model, in.cluster, run, &layout);
        int64_t expected = 0;
        for (int64_t d = gpus; d >= 1 && expected == 0; --d)
          if (sequences % (d * micro_batch) == 0) expected = d;
        if (expected == 0) {
          EXPECT_EQ(status.message().rfind("--micro-batch", 0), 0u) << status.message();
        } else {
          EXPECT_TRUE(status.ok()) << status.message();
          EXPECT_EQ(layout.dp, expected) << gpus << " GPUs, " << sequences << " sequences, mb " << micro_batch;
        }
      }
    }
  }
}

TEST(PlanCostModel, TenMillionGpusAreValidatedAtOnceAndMoreAreAnError) {
  Inputs in;
  in.cluster.num_gpus = 10'000'000;
  Layout layout;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) {
    layout.dp = 0;
    ASSERT_TRUE(validate_layout(in.model, in.cluster, in.run, &layout).ok());
  }
  EXPECT_EQ(layout.dp, 2048);
  // The count-down took 10^7 steps per call.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
  in.cluster.num_gpus = 1'000'000'000'000;
  EXPECT_EQ(validate_layout(in.model, in.cluster, in.run, &layout).message(),
            "--gpus must be an integer in [1, 10000000] (got 1000000000000)");
}

// Degrees each within range whose product does not fit in 64 bits: an
// error, not a wrapped product.
TEST(PlanCostModel, LayoutProductsDoNotOverflow) {
  Layout huge;
  huge.tp = huge.pp = huge.cp = 10'000'000;
  EXPECT_EQ(layout_error(huge, 64),
            "--tp 10000000 x --pp 10000000 x --cp 10000000 = more than 2^63 is more than --gpus 64");
  huge.dp = 10'000'000;
  EXPECT_EQ(layout_error(huge, 64).rfind("--tp 10000000 x --pp 10000000 x --dp 10000000 x --cp 10000000 = ", 0), 0u);
  Layout stages;
  stages.pp = 2, stages.vp = 1024;
  EXPECT_EQ(layout_error(stages, 8).rfind("--pp 2 x --vp 1024 is more stages", 0), 0u);
  // Out of range: the degree itself.
  Layout too_many;
  too_many.micro_batch = int64_t{1} << 40;
  EXPECT_EQ(layout_error(too_many, 8), "--micro-batch must be an integer in [1, 65536] (got 1099511627776)");
}

// Tensor parallelism across nodes ("--tp 16" on two 8-GPU nodes, where a
// model of 8 KV heads replicates them over InfiniBand) was accepted silently.
TEST(PlanCostModel, TensorParallelismStaysInsideANode) {
  Layout layout;
  layout.tp = 16;
  EXPECT_EQ(layout_error(layout, 16),
            "--tp 16 is more than the 8 GPUs of a node: tensor parallelism stays inside a node's NVLink");
  layout.tp = 8;
  EXPECT_EQ(layout_error(layout, 16), "");
}

TEST(PlanCostModel, RecomputeNamesRoundTrip) {
  for (Recompute r : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
    auto parsed = parse_recompute(recompute_name(r));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_EQ(parse_recompute("some").status().message().rfind("--recompute must be", 0), 0u);
}

TEST(PlanCostModel, ThroughputAndMfuFollowFromTheStep) {
  Inputs in;
  in.cluster.num_gpus = 64;
  Layout layout;
  layout.tp = 4, layout.pp = 2, layout.recompute = Recompute::kFull;
  auto plan = plan_run(in.model, in.cluster, layout, in.run);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const Plan& p = *plan;
  EXPECT_DOUBLE_EQ(p.tokens_per_s, (1 << 24) / p.step.step_s);
  const double flops_per_token = 6 * p.active_parameters;  // plus attention: within a few percent at 8K
  EXPECT_NEAR(p.model_flops_per_token / flops_per_token, 1.0, 0.5);
  EXPECT_NEAR(p.mfu, p.model_flops_per_token * p.tokens_per_s / (64 * in.cluster.gpu.bf16_flops), 1e-12);
  EXPECT_NEAR(p.model_tflops_per_gpu * 1e12, p.mfu * in.cluster.gpu.bf16_flops, 1e-3);
  // Full recompute runs the forward (a third of the model FLOPs) once more.
  EXPECT_NEAR(p.hardware_tflops_per_gpu / p.model_tflops_per_gpu, 4.0 / 3, 1e-9);
  EXPECT_NEAR(p.days, 1e12 / p.tokens_per_s / 86400, 1e-9);
  // The step and the memory are the sums of their parts.
  const auto& st = p.step;
  EXPECT_NEAR(st.step_s,
              st.gemm_s + st.attention_s + st.elementwise_s + st.grad_accum_s + st.tp_comm_s + st.pp_comm_s +
                  st.ep_comm_s + st.cp_comm_s + st.dp_comm_s + st.bubble_s + st.optimizer_s,
              1e-12 * st.step_s);
  // Given facts give the same plan as computed ones (search passes them in).
  const ModelFacts facts = model_facts(in.model, in.run.seq_len);
  auto with_facts = plan_run(in.model, in.cluster, layout, in.run, &facts);
  ASSERT_TRUE(with_facts.ok());
  EXPECT_EQ(plan_to_json(*with_facts), plan_to_json(p));
}

TEST(PlanCostModel, JsonCarriesTheBreakdowns) {
  Inputs in;
  in.cluster.num_gpus = 8;
  auto plan = plan_run(in.model, in.cluster, Layout{}, in.run);
  ASSERT_TRUE(plan.ok());
  const nlohmann::json j = plan_to_json(*plan);
  EXPECT_EQ(j["layout"]["dp"], 8);
  EXPECT_EQ(j["step_time_s"], plan->step.step_s);
  EXPECT_EQ(j["step_breakdown_s"]["gemm"], plan->step.gemm_s);
  EXPECT_EQ(j["memory_per_gpu_bytes"], plan->memory.total_bytes);
  EXPECT_EQ(j["memory_breakdown_bytes"]["pipeline_rank"], 0);
  EXPECT_EQ(j["layout"]["recompute"], "selective");
  EXPECT_EQ(j["goodput"], plan->reliability.goodput);
}

}  // namespace
}  // namespace sc::plan
