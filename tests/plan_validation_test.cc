// The planner against published training runs (docs/plan_validation.md).
// Each run carries its source, its layout and the tolerance asserted here:
// 10% for the three runs the planner was first held to (GPT-3, 1T, Llama 3
// 405B), for Llama 3 at 8,192 GPUs and for NVIDIA's measured H100 runs of
// Llama 3.1 and Nemotron-4, 15% for the further Megatron runs (never used to
// set a constant) and 30% for Llama 3's long-context stage, whose remaining
// error the page analyses. A change that makes any of them worse than its
// tolerance fails.
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
        << run.name << ": planner " << row->predicted_tflops_per_gpu << " vs published " << row->published_tflops_per_gpu
        << " TFLOP/s per GPU (" << run.source << ")";
  }
}

TEST(PlanValidation, TheThreeNamedRunsKeepTheirTolerances) {
  EXPECT_LE(run_named("GPT-3 175B, 1024 A100").tolerance, 0.10);
  EXPECT_LE(run_named("Megatron 1T, 3072 A100").tolerance, 0.10);
  EXPECT_LE(run_named("Llama 3 405B, 16384 H100").tolerance, 0.10);
  EXPECT_LE(run_named("Llama 3 405B, 8192 H100").tolerance, 0.10);
}

TEST(PlanValidation, PublishedLayoutsFitWhereTheRunsFit) {
  for (const auto& run : published_runs()) {
    auto row = validate_run(run);
    ASSERT_TRUE(row.ok()) << run.name;
    const MemoryBreakdown& memory = row->plan.memory;
    EXPECT_LE(memory.total_bytes, memory.capacity_bytes * (1 + run.memory_overcount_allowed))
        << run.name << ": " << memory.total_bytes / 1e9 << " GB of " << memory.capacity_bytes / 1e9;
    if (run.memory_overcount_allowed == 0) {
      EXPECT_TRUE(memory.fits) << run.name;
    }
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

TEST(PlanValidation, ARunsOwnVocabularyReplacesThePresets) {
  // NVIDIA's 405B recipe uses the GPT-2 tokenizer: a smaller output layer on
  // the last pipeline rank, which sets the pace, so more tokens/s.
  PublishedRun run = run_named("Llama 3.1 405B, 576 H100");
  ASSERT_EQ(run.vocab_size, 51200);
  auto gpt2_vocab = validate_run(run);
  run.vocab_size = 0;
  auto llama_vocab = validate_run(run);
  ASSERT_TRUE(gpt2_vocab.ok() && llama_vocab.ok());
  EXPECT_GT(gpt2_vocab->plan.tokens_per_s, llama_vocab->plan.tokens_per_s * 1.01);
  EXPECT_LT(gpt2_vocab->plan.model_flops_per_token, llama_vocab->plan.model_flops_per_token);
}

TEST(PlanValidation, TokensPerSecondRunsAreComparedInTokensPerSecond) {
  for (const auto& run : published_runs()) {
    if (run.published_tokens_per_s_per_gpu <= 0) continue;
    auto row = validate_run(run);
    ASSERT_TRUE(row.ok()) << run.name;
    const double planner_tokens = row->plan.tokens_per_s / static_cast<double>(row->plan.num_gpus);
    EXPECT_NEAR(row->error, planner_tokens / run.published_tokens_per_s_per_gpu - 1, 1e-9) << run.name;
  }
}

TEST(PlanValidation, InterleavingShrinksTheBubble) {
  PublishedRun run = run_named("Llama 3 405B, 16384 H100");
  auto v8 = validate_run(run);
  run.vp = 2;
  auto v2 = validate_run(run);
  ASSERT_TRUE(v8.ok() && v2.ok());
  // Fill and drain shrink 4x from v = 2 to v = 8, but the chains of
  // transfers the first and last micro-batch cross grow from 2 x 31 to
  // 2 x 127 hops (about 0.85 ms each here), so the whole shrinks about 3x.
  const double ratio = v2->plan.step.bubble_s / v8->plan.step.bubble_s;
  EXPECT_GT(ratio, 2.5);
  EXPECT_LT(ratio, 3.6);
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
