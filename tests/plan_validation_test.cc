// The planner against published training runs (docs/plan_validation.md).
// The goal is 10%; the tolerance asserted here is what the planner reaches
// today (see the page for each error and its likely cause), so a change that
// makes any of them worse fails.
#include <gtest/gtest.h>

#include <cmath>

#include "plan/cost_model.h"

namespace sc::plan {
namespace {

struct Published {
  const char* model;
  const char* cluster;
  int64_t gpus, tp, pp, vp, dp, seq_len, batch_sequences;
  Recompute recompute;
  int64_t zero;
  bool overlap_dp;
  bool hardware_flops;  // the paper counts recomputation (Megatron 2021)
  double tflops_per_gpu;
  double tolerance;
};

Plan run(const Published& p) {
  auto model = resolve_plan_model(p.model);
  auto cluster = cluster_preset(p.cluster);
  EXPECT_TRUE(model.ok() && cluster.ok());
  cluster->num_gpus = p.gpus;
  Layout layout;
  layout.tp = p.tp, layout.pp = p.pp, layout.vp = p.vp, layout.dp = p.dp;
  layout.recompute = p.recompute, layout.zero = p.zero, layout.overlap_dp = p.overlap_dp;
  RunSpec spec{p.seq_len, p.batch_sequences * p.seq_len, 1e12};
  auto plan = plan_run(*model, *cluster, layout, spec);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return *plan;
}

// Narayanan et al. 2021 (arXiv:2104.04473), section 5.1 and Table 1: full
// recomputation, no distributed optimizer, DP all-reduce after the flush.
const Published kGpt3{"gpt3-175b", "selene-a100", 1024, 8, 16, 1, 8, 2048, 1536, Recompute::kFull, 0, false, true,
                      140, 0.25};
const Published kMegatron1T{"megatron-1t", "selene-a100", 3072, 8, 64, 1, 6, 2048, 3072, Recompute::kFull, 0, false,
                            true, 163, 0.25};
// The Llama 3 Herd of Models (2024), Table 4: TP8 CP1 PP16 DP128, 8,192
// tokens, 16M-token batch, 400 TFLOP/s per GPU; no activation checkpointing
// (section 3.3.2). The interleaving depth is not published: v = 2 assumed.
const Published kLlama3{"llama3-405b", "llama3-h100", 16384, 8, 16, 2, 128, 8192, 2048, Recompute::kNone, 1, true,
                        false, 400, 0.25};

double relative_error(const Published& p) {
  const Plan plan = run(p);
  const double predicted = p.hardware_flops ? plan.hardware_tflops_per_gpu : plan.model_tflops_per_gpu;
  return predicted / p.tflops_per_gpu - 1;
}

TEST(PlanValidation, Gpt3On1024A100) { EXPECT_LT(std::abs(relative_error(kGpt3)), kGpt3.tolerance); }
TEST(PlanValidation, Megatron1TOn3072A100) {
  EXPECT_LT(std::abs(relative_error(kMegatron1T)), kMegatron1T.tolerance);
}
TEST(PlanValidation, Llama3On16384H100) { EXPECT_LT(std::abs(relative_error(kLlama3)), kLlama3.tolerance); }

TEST(PlanValidation, PublishedLayoutsFitWhereTheRunsFit) {
  EXPECT_TRUE(run(kGpt3).memory.fits);
  EXPECT_TRUE(run(kMegatron1T).memory.fits);
}

TEST(PlanValidation, Llama3FailureRatesGiveTheReportedInterruptions) {
  // 419 unexpected interruptions in 54 days on 16,384 GPUs, by construction.
  const Plan plan = run(kLlama3);
  EXPECT_NEAR(plan.reliability.interruptions_per_day * 54, 419, 1);
  EXPECT_GT(plan.reliability.goodput, 0.85);  // the paper: above 90% effective training time
}

}  // namespace
}  // namespace sc::plan
