// The planner against published training runs (docs/plan_validation.md).
// Each run carries its source, its layout and the tolerance asserted here:
// 10% for the GPT-3 and 1T runs the planner was first held to, 15% for the
// further Megatron runs (never used to set a constant), 20% for Llama 3,
// whose remaining error the page analyses. A change that makes any of them
// worse than its tolerance fails.
#include <gtest/gtest.h>

#include <cmath>

#include "plan/validation.h"

namespace sc::plan {
namespace {

const PublishedRun& run_named(const std::string& name) {
  static const std::vector<PublishedRun> runs = published_runs();
  for (const auto& r : runs)
    if (r.name == name) return r;
  ADD_FAILURE() << "no published run named " << name;
  return runs.front();
}

ValidationRow validate(const std::string& name) {
  auto row = validate_run(run_named(name));
  EXPECT_TRUE(row.ok()) << row.status().message();
  return *row;
}

TEST(PlanValidation, EveryPublishedRunWithinItsTolerance) {
  for (const auto& run : published_runs()) {
    auto row = validate_run(run);
    ASSERT_TRUE(row.ok()) << run.name << ": " << row.status().message();
    EXPECT_LT(std::abs(row->error), run.tolerance)
        << run.name << ": planner " << row->predicted_tflops_per_gpu << " vs published " << run.published_tflops_per_gpu
        << " TFLOP/s per GPU (" << run.source << ")";
  }
}

TEST(PlanValidation, TheThreeNamedRunsKeepTheirTolerances) {
  EXPECT_LE(run_named("GPT-3 175B, 1024 A100").tolerance, 0.10);
  EXPECT_LE(run_named("Megatron 1T, 3072 A100").tolerance, 0.10);
  EXPECT_LE(run_named("Llama 3 405B, 16384 H100").tolerance, 0.20);
}

TEST(PlanValidation, PublishedLayoutsFitWhereTheRunsFit) {
  for (const auto& run : published_runs()) {
    auto row = validate_run(run);
    ASSERT_TRUE(row.ok()) << run.name;
    EXPECT_TRUE(row->plan.memory.fits) << run.name << ": " << row->plan.memory.total_bytes / 1e9 << " GB";
  }
}

TEST(PlanValidation, Llama3WithoutRecomputationDoesNotFitAsThePlannerCountsIt) {
  // The planner's recompute=none keeps the norm outputs and the SwiGLU
  // product; with all 16 micro-batches in flight on the middle stages that
  // exceeds 80 GB, which is why the validation uses its selective mode.
  PublishedRun run = run_named("Llama 3 405B, 16384 H100");
  run.recompute = Recompute::kNone;
  auto row = validate_run(run);
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(row->plan.memory.fits);
}

TEST(PlanValidation, InterleavingShrinksTheBubble) {
  PublishedRun run = run_named("Llama 3 405B, 16384 H100");
  auto v8 = validate_run(run);
  run.vp = 2;
  auto v2 = validate_run(run);
  ASSERT_TRUE(v8.ok() && v2.ok());
  EXPECT_NEAR(v2->plan.step.bubble_s / v8->plan.step.bubble_s, 4.0, 0.4);
}

TEST(PlanValidation, The2021SoftwareIsSlowerOnTheSameHardware) {
  PublishedRun run = run_named("GPT-3 175B, 1024 A100");
  const double tflops_2021 = validate(run.name).predicted_tflops_per_gpu;
  run.software = "current";
  auto now = validate_run(run);
  ASSERT_TRUE(now.ok());
  EXPECT_GT(now->predicted_tflops_per_gpu, tflops_2021 * 1.05);
}

TEST(PlanValidation, Llama3FailureRatesGiveTheReportedInterruptions) {
  // 419 unexpected interruptions in 54 days on 16,384 GPUs, by construction.
  const Plan plan = validate("Llama 3 405B, 16384 H100").plan;
  EXPECT_NEAR(plan.reliability.interruptions_per_day * 54, 419, 1);
  EXPECT_GT(plan.reliability.goodput, 0.85);  // the paper: above 90% effective training time
}

}  // namespace
}  // namespace sc::plan
