// `supercluster plan` as a user runs it: a plan, JSON keys, bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace sc {
namespace {

const char* kLlama3 =
    "plan --model llama3-405b --cluster llama3-h100 --gpus 16384 --tp 8 --pp 16 --vp 2 --dp 128 --seq-len 8192 "
    "--global-batch-tokens 16777216 --recompute none --train-tokens 15.6e12";

TEST(PlanCli, JsonHasTheDocumentedKeys) {
  auto r = testing::run_supercluster(std::string(kLlama3) + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto json = nlohmann::json::parse(r.output);
  for (const char* key : {"step_time_s", "tokens_per_s", "mfu", "model_tflops_per_gpu", "memory_per_gpu_bytes", "fits",
                          "days", "gpu_hours", "energy_mwh", "facility_power_mw", "expected_interruptions",
                          "checkpoint_interval_s", "goodput", "layout", "step_breakdown_s", "memory_breakdown_bytes"})
    EXPECT_TRUE(json.contains(key)) << key;
  EXPECT_EQ(json["layout"]["tp"], 8);
  EXPECT_GT(json["mfu"].get<double>(), 0.2);
  EXPECT_LT(json["mfu"].get<double>(), 0.7);
}

TEST(PlanCli, TableNamesEveryPart) {
  auto r = testing::run_supercluster(kLlama3);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* word : {"memory/GPU", "bubble", "MFU", "MW facility", "goodput", "interruptions/day"})
    EXPECT_NE(r.output.find(word), std::string::npos) << word;
}

void expect_error(const std::string& args, const std::string& names) {
  auto r = testing::run_supercluster("plan " + args);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(names), std::string::npos) << r.output;
}

TEST(PlanCli, BadInputNamesTheField) {
  expect_error("--model grok-1 --gpus 40 --tp 5 --pp 1 --dp 8", "--tp 5 does not divide num_attention_heads 48");
  expect_error("--model grok-1 --gpus 64 --tp 8 --pp 2 --dp 2", "is not --gpus 64");
  expect_error("--model grok-1 --gpus 64 --tp 8 --pp 1 --dp 8 --ep 3", "--ep 3 does not divide num_experts 8");
  expect_error("--model llama3-405b --gpus 64 --tp 8 --ep 2", "--ep 2 needs a mixture-of-experts model");
  expect_error("--model grok-1 --gpu z100 --tp 8", "unknown GPU 'z100'");
  expect_error("--model nope-7b --tp 8", "unknown model 'nope-7b'");
  expect_error("--cluster nowhere --tp 8", "unknown cluster preset 'nowhere'");
  expect_error("--model grok-1 --gpus 64 --tp 8 --seq-len -5", "--seq-len must be positive");
  expect_error("--model grok-1 --tp 8 --gpus -1", "--gpus must be positive");
  expect_error("--model grok-1 --gpus 64 --tp 8 --recompute some", "--recompute must be none, selective or full");
  expect_error("--model grok-1 --gpus 64 --tp 8 --train-tokens -1", "--train-tokens must be positive");
}

TEST(PlanCli, ClusterFileErrorsNameTheField) {
  testing::TempDir dir;
  testing::write_text(dir.file("bad.json"), R"({"base": "colossus-100k", "num_gpus": -8})");
  expect_error("--cluster " + dir.file("bad.json") + " --tp 8", "'num_gpus' must be a positive integer");
  testing::write_text(dir.file("typo.json"), R"({"gpu": "h100-sxm", "num_gpus": 64, "pue_ratio": 1.2})");
  expect_error("--cluster " + dir.file("typo.json") + " --tp 8", "'pue_ratio' is not a cluster field");
}

TEST(PlanCli, SearchWithNothingThatFitsSaysWhatWouldBeNeeded) {
  expect_error("--model llama3-405b --gpus 8 --search --seq-len 8192", "smallest memory found");
}

TEST(PlanCli, SearchRanksLayoutsAndExplainsRejections) {
  auto r = testing::run_supercluster(
      "plan --model llama3-405b --cluster llama3-h100 --gpus 1024 --search --tp 8 --micro-batch 1 --recompute full "
      "--seq-len 8192 --global-batch-tokens 16777216");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("rank"), std::string::npos);
  EXPECT_NE(r.output.find("rejected"), std::string::npos);
}

}  // namespace
}  // namespace sc
