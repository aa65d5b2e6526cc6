// `supercluster plan` as a user runs it: a plan, JSON keys, bad input.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace sc {
namespace {

// Llama 3 405B as docs/plan_validation.md runs it.
const char* kLlama3 =
    "plan --model llama3-405b --cluster llama3-h100 --gpus 16384 --tp 8 --pp 16 --vp 8 --dp 128 --seq-len 8192 "
    "--global-batch-tokens 16777216 --recompute selective --balance-pipeline --software llama3-2024 "
    "--train-tokens 15.6e12";

TEST(PlanCli, JsonHasTheDocumentedKeys) {
  auto r = testing::run_supercluster(std::string(kLlama3) + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto json = nlohmann::json::parse(r.output);
  for (const char* key : {"step_time_s", "tokens_per_s", "mfu", "model_tflops_per_gpu", "memory_per_gpu_bytes", "fits",
                          "days", "gpu_hours", "energy_mwh", "facility_power_mw", "expected_interruptions",
                          "checkpoint_interval_s", "goodput", "layout", "step_breakdown_s", "memory_breakdown_bytes"})
    EXPECT_TRUE(json.contains(key)) << key;
  for (const char* key : {"gemm", "attention", "elementwise", "grad_accum", "tp_comm", "pp_comm", "ep_comm", "cp_comm",
                          "dp_comm", "bubble", "optimizer"})
    EXPECT_TRUE(json["step_breakdown_s"].contains(key)) << key;
  for (const char* key : {"gpus", "node_rest", "network_storage", "cooling"})
    EXPECT_TRUE(json["power_breakdown_mw"].contains(key)) << key;
  EXPECT_EQ(json["layout"]["tp"], 8);
  EXPECT_EQ(json["layout"]["vp"], 8);
  EXPECT_EQ(json["layout"]["software"], "llama3-2024");
  EXPECT_TRUE(json["fits"].get<bool>());
  EXPECT_GT(json["mfu"].get<double>(), 0.2);
  EXPECT_LT(json["mfu"].get<double>(), 0.7);
}

// cluster_spec is a cluster file: fed back with --cluster it plans the same,
// and an edit to it changes what it should.
TEST(PlanCli, ClusterSpecIsAClusterFileThatPlansTheSame) {
  auto preset = testing::run_supercluster(std::string(kLlama3) + " --json");
  ASSERT_EQ(preset.exit_code, 0) << preset.output;
  const auto expected = nlohmann::json::parse(preset.output);
  testing::TempDir dir;
  nlohmann::json spec = expected["cluster_spec"];
  testing::write_text(dir.file("cluster.json"), spec.dump(1));
  std::string args = kLlama3;
  args.replace(args.find("--cluster llama3-h100"), 21, "--cluster " + dir.file("cluster.json"));
  auto same = testing::run_supercluster(args + " --json");
  ASSERT_EQ(same.exit_code, 0) << same.output;
  const auto got = nlohmann::json::parse(same.output);
  for (const char* key : {"step_time_s", "memory_per_gpu_bytes", "facility_power_mw", "goodput", "cost_usd"})
    EXPECT_DOUBLE_EQ(got[key].get<double>(), expected[key].get<double>()) << key;
  EXPECT_EQ(got["cluster_spec"], spec);
  spec["pue"] = 1.5;
  testing::write_text(dir.file("cluster.json"), spec.dump(1));
  auto edited = testing::run_supercluster(args + " --json");
  ASSERT_EQ(edited.exit_code, 0) << edited.output;
  EXPECT_NE(nlohmann::json::parse(edited.output)["facility_power_mw"], expected["facility_power_mw"]);
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
  expect_error("--model grok-1 --gpus 64 --tp 8 --seq-len -5", "--seq-len must be an integer in [1, 16777216] (got '-5')");
  expect_error("--model grok-1 --tp 8 --gpus -1", "--gpus must be an integer in [1, 10000000] (got '-1')");
  expect_error("--model grok-1 --gpus 64 --tp 8 --recompute some", "--recompute must be none, selective or full");
  expect_error("--model grok-1 --gpus 64 --tp 8 --train-tokens -1", "--train-tokens must be a number in [1, ");
}

TEST(PlanCli, ZeroSizesAreErrorsNotDefaults) {
  expect_error("--model grok-1 --gpus 64 --tp 0", "--tp must be an integer in [1, 10000000] (got '0')");
  expect_error("--model grok-1 --gpus 64 --tp 8 --micro-batch 0", "--micro-batch must be an integer in [1, 65536] (got '0')");
  expect_error("--model grok-1 --gpus 64 --tp 8 --global-batch-tokens 0",
               "--global-batch-tokens must be an integer in [1, 1073741824] (got '0')");
  expect_error("--model grok-1 --gpus 0 --tp 8", "--gpus must be an integer in [1, 10000000] (got '0')");
  expect_error("--model grok-1 --gpus 64 --tp 8 --train-tokens 0",
               "--train-tokens must be a number in [1, 1000000000000000] (got '0')");
  expect_error("--model grok-1 --gpus 64 --tp 8 --gpu-hour-usd -3", "--gpu-hour-usd must be a number in [0, 1000] (got '-3')");
}

TEST(PlanCli, ImpossibleLayoutsNameTheFlag) {
  expect_error("--model grok-1 --gpus 64 --tp 8 --vp 2", "--vp 2 needs --pp > 1");
  expect_error("--model grok-1 --gpus 64 --tp 8 --pp 128 --dp 1", "--tp 8 x --pp 128 x --dp 1 x --cp 1 = 1024 is not --gpus 64");
  expect_error("--model llama3-405b --gpus 1024 --tp 8 --pp 128", "--pp 128 x --vp 1 is more stages than num_hidden_layers 126");
  expect_error("--model grok-1 --gpus 64 --tp 8 --zero 4", "--zero must be an integer in [0, 3] (got '4')");
  expect_error("--model grok-1 --gpus 64 --tp 8 --software bogus", "unknown --software 'bogus'");
  expect_error("--model grok-1 --sweep gpus=64,x", "--sweep: 'x' is not a GPU count in [1, 10000000]");
  expect_error("--model grok-1 --sweep nodes=8", "--sweep must be gpus=N1,N2,...");
}

TEST(PlanCli, SweepGivesOneRowPerClusterSize) {
  auto r = testing::run_supercluster("plan --model llama2-7b --cluster oracle-24k --sweep gpus=64,512,4096 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto json = nlohmann::json::parse(r.output);
  ASSERT_EQ(json["sweep"].size(), 3u);
  double previous_tokens = 0;
  for (const auto& point : json["sweep"]) {
    ASSERT_TRUE(point.contains("plan")) << point.dump();
    const auto& plan = point["plan"];
    for (const char* key : {"tokens_per_s", "mfu", "facility_power_mw", "interruptions_per_day", "goodput"})
      EXPECT_TRUE(plan.contains(key)) << key;
    EXPECT_GT(plan["tokens_per_s"].get<double>(), previous_tokens);  // more GPUs, more throughput here
    previous_tokens = plan["tokens_per_s"].get<double>();
  }
  EXPECT_GT(json["sweep"][2]["plan"]["interruptions_per_day"].get<double>(),
            json["sweep"][0]["plan"]["interruptions_per_day"].get<double>());
  auto text = testing::run_supercluster("plan --model llama2-7b --cluster oracle-24k --sweep gpus=64,512");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  for (const char* word : {"GPUs", "tokens/s", "MFU", "MW", "intr/day", "goodput"})
    EXPECT_NE(text.output.find(word), std::string::npos) << word;
}

TEST(PlanCli, HtmlReportIsOneSelfContainedFileWithCharts) {
  testing::TempDir dir;
  const std::string path = dir.file("report.html");
  auto r = testing::run_supercluster("plan --model llama2-7b --cluster oracle-24k --gpus 256 --sweep gpus=64,256 --html " +
                                     path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string html = testing::read_text(path);
  for (const char* part : {"<!DOCTYPE html>", "<svg", "Where one training step", "Memory on each GPU", "Scaling",
                           "Power", "interruptions per day", "goodput"})
    EXPECT_NE(html.find(part), std::string::npos) << part;
  EXPECT_EQ(html.find("<script"), std::string::npos);  // readable without running anything
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no external resources
  // Written atomically: only the report is left in the directory.
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);
  expect_error("--model llama2-7b --cluster oracle-24k --gpus 256 --html /nonexistent-dir/report.html",
               "/nonexistent-dir/report.html");
}

TEST(PlanCli, ValidateListsThePublishedRuns) {
  auto r = testing::run_supercluster("plan --validate");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* run : {"GPT-3 175B, 1024 A100", "Megatron 1T, 3072 A100", "Llama 3 405B, 16384 H100"})
    EXPECT_NE(r.output.find(run), std::string::npos) << run;
}

TEST(PlanCli, CalibrateMeasuresThisMachineBesideTheModel) {
  auto r = testing::run_supercluster("plan --calibrate --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto json = nlohmann::json::parse(r.output);
  ASSERT_EQ(json["gemm"].size(), 6u);
  for (const auto& point : json["gemm"]) {
    EXPECT_GT(point["gflops"].get<double>(), 0);
    EXPECT_GT(point["model_gpu_efficiency"].get<double>(), 0);
    EXPECT_LT(point["model_gpu_efficiency"].get<double>(), 1);
  }
  ASSERT_EQ(json["attention"].size(), 2u);
  // mpirun is part of the project's dependencies; the 2-rank all-reduce ran.
  ASSERT_TRUE(json.contains("allreduce")) << json.dump();
  for (const auto& point : json["allreduce"]) {
    EXPECT_GT(point["bus_gbps"].get<double>(), 0);
    EXPECT_GT(point["model_nvlink_bus_gbps"].get<double>(), 0);
  }
}

TEST(PlanCli, ClusterFileErrorsNameTheField) {
  testing::TempDir dir;
  testing::write_text(dir.file("bad.json"), R"({"base": "colossus-100k", "num_gpus": -8})");
  expect_error("--cluster " + dir.file("bad.json") + " --tp 8", "'num_gpus' must be an integer in [1, 10000000]");
  testing::write_text(dir.file("typo.json"), R"({"gpu": "h100-sxm", "num_gpus": 64, "pue_ratio": 1.2})");
  expect_error("--cluster " + dir.file("typo.json") + " --tp 8", "'pue_ratio' is not a cluster field");
}

TEST(PlanCli, SearchWithNothingThatFitsSaysWhatWouldBeNeeded) {
  auto r = testing::run_supercluster("plan --model llama3-405b --gpus 8 --search --seq-len 8192");
  EXPECT_NE(r.exit_code, 0) << r.output;
  for (const char* part : {"no layout of llama3-405b fits on 8 x h100-sxm", "does not fit in GPU memory",
                           "smallest memory found:", "more memory per GPU"})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << "\n" << r.output;
}

TEST(PlanCli, SearchRanksLayoutsAndExplainsRejections) {
  auto r = testing::run_supercluster(
      "plan --model llama3-405b --cluster llama3-h100 --gpus 1024 --search --tp 8 --micro-batch 1 --recompute full "
      "--seq-len 8192 --global-batch-tokens 16777216");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("rank"), std::string::npos);
  EXPECT_NE(r.output.find("rejected"), std::string::npos);
}

// Issue 15's untrusted input. Each case must end within a minute (`timeout`
// exits 124 otherwise), with exit code 1 and one line naming the flag, file
// or field: no abort, no hang, no page of output.
void expect_one_line_error(const std::string& args, const std::string& names) {
  auto r = testing::run_command("timeout 60 " + std::string(SUPERCLUSTER_BINARY) + " plan " + args);
  EXPECT_EQ(r.exit_code, 1) << args.substr(0, 200) << "\n" << r.output.substr(0, 2000);
  EXPECT_EQ(r.output.rfind("error: ", 0), 0u) << r.output.substr(0, 2000);
  EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "more than one line:\n" << r.output.substr(0, 2000);
  EXPECT_LT(r.output.size(), 500u) << r.output.substr(0, 2000);
  EXPECT_NE(r.output.find(names), std::string::npos) << "expected: " << names << "\ngot: " << r.output.substr(0, 2000);
}

// Item 5: --gpus 10^12 counted dp down one by one per layout, for weeks.
TEST(PlanCli, HugeGpuCountsAreAnErrorNotWeeksOfCounting) {
  expect_one_line_error("--model grok-1 --gpus 1000000000000", "--gpus must be an integer in [1, 10000000] (got '1000000000000')");
  // Not clamped to INT64_MAX on the way in.
  expect_one_line_error("--model grok-1 --gpus 99999999999999999999",
                        "--gpus must be an integer in [1, 10000000] (got '99999999999999999999')");
  expect_one_line_error("--model grok-1 --sweep gpus=64,1000000000000", "--sweep: '1000000000000' is not a GPU count");
}

// Item 14: every flag is a finite number in its documented range.
TEST(PlanCli, FlagsOutOfRangeOrNotFiniteAreOneLineErrors) {
  const struct {
    const char* args;
    const char* error;
  } cases[] = {
      {"--train-tokens inf", "--train-tokens must be a number in [1, 1000000000000000] (got 'inf')"},
      {"--train-tokens nan", "--train-tokens must be a number in [1, 1000000000000000] (got 'nan')"},
      {"--train-tokens 1e300", "--train-tokens must be a number in [1, 1000000000000000] (got '1e300')"},
      {"--gpu-hour-usd nan", "--gpu-hour-usd must be a number in [0, 1000] (got 'nan')"},
      {"--gpu-hour-usd inf", "--gpu-hour-usd must be a number in [0, 1000] (got 'inf')"},
      // It was reported as "--global-batch-tokens must be positive (got 0)".
      {"--seq-len 1000000000000", "--seq-len must be an integer in [1, 16777216] (got '1000000000000')"},
      {"--seq-len 1e12", "--seq-len must be an integer in [1, 16777216] (got '1e12')"},
      {"--global-batch-tokens 99999999999999", "--global-batch-tokens must be an integer in [1, 1073741824]"},
      {"--tp 1.5", "--tp must be an integer in [1, 10000000] (got '1.5')"},
      {"--tp 100000000", "--tp must be an integer in [1, 10000000] (got '100000000')"},
      {"--pp -3", "--pp must be an integer in [1, 10000000] (got '-3')"},
      {"--vp 5000", "--vp must be an integer in [1, 1024] (got '5000')"},
      {"--dp x", "--dp must be an integer in [1, 10000000] (got 'x')"},
      {"--ep 0x10", "--ep must be an integer in [1, 10000000] (got '0x10')"},
      {"--cp 99999999999", "--cp must be an integer in [1, 10000000]"},
      {"--micro-batch 100000", "--micro-batch must be an integer in [1, 65536] (got '100000')"},
      {"--zero -1", "--zero must be an integer in [0, 3] (got '-1')"},
      {"--tp 10000000 --pp 10000000 --cp 10000000", "= more than 2^63 is more than --gpus"},
  };
  for (const auto& c : cases) expect_one_line_error(std::string("--model grok-1 --gpus 64 ") + c.args, c.error);
  // Names and paths are quoted short, however long.
  const std::string long_name(100000, 'z');
  expect_one_line_error("--model grok-1 --gpus 64 --gpu " + long_name, "unknown GPU 'zzzz");
  expect_one_line_error("--model grok-1 --gpus 64 --software " + long_name, "unknown --software 'zzzz");
  expect_one_line_error("--model grok-1 --gpus 64 --recompute " + long_name, "--recompute must be none");
  expect_one_line_error("--model grok-1 --sweep gpus=" + long_name, "--sweep: 'zzzz");
  expect_one_line_error("--model " + long_name, "--model must be a name or a path of at most 4096 bytes");
  expect_one_line_error("--model " + std::string(300, 'z'), "unknown model 'zzzz");
}

// A model file's max_position_embeddings is the default --seq-len: out of
// range it is named as such (it came out as "--global-batch-tokens must be
// positive (got 0)" for every layout).
TEST(PlanCli, AModelsDefaultSequenceLengthOutOfRangeIsNamed) {
  testing::TempDir dir;
  testing::write_text(dir.file("config.json"), R"({"model_type": "llama", "vocab_size": 32000, "hidden_size": 4096,
      "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
      "max_position_embeddings": 1000000000000, "hidden_act": "silu"})");
  // The model loader bounds the field (docs/model.md, "Bounds") to the
  // planner's --seq-len range, so the file itself is refused, by field.
  expect_one_line_error("--model " + dir.file("config.json") + " --gpus 64",
                        "'max_position_embeddings' must be an integer in [1, 16777216] (got number 1000000000000)");
}

// Issue 21: flags a search cannot satisfy are one flag error, not "no valid
// layout" with every layout rejected for the same reason.
TEST(PlanCli, FlagsNoLayoutCanSatisfyAreFlagErrors) {
  expect_one_line_error("--model grok-1 --gpus 64 --vp 2", "--vp 2 needs --pp > 1");
  expect_one_line_error("--model grok-1 --gpus 64 --zero 4", "--zero must be an integer in [0, 3] (got '4')");
  expect_one_line_error("--model grok-1 --gpus 64 --global-batch-tokens 1000",
                        "--global-batch-tokens 1000 is not a multiple of --seq-len 8192");
  // 8 KV heads, two nodes of 8 GPUs: searched or given, TP stays in a node.
  expect_one_line_error("--model llama3-405b --cluster dgx-h100 --gpus 16 --tp 16 --search",
                        "--tp 16 is more than the 8 GPUs of a node");
  expect_one_line_error("--model llama3-405b --cluster dgx-h100 --gpus 16 --tp 16 --dp 1",
                        "--tp 16 is more than the 8 GPUs of a node");
}

// Items 4 and 14: cluster files, field by field.
TEST(PlanCli, ClusterFilesOfTheWrongTypeOrRangeAreOneLineErrors) {
  testing::TempDir dir;
  const struct {
    const char* json;
    const char* error;
  } cases[] = {
      // Aborted with nlohmann::json::type_error (exit 134).
      {R"({"base": "colossus-100k", "name": 5})", "'name' must be a string of at most 256 bytes (got number 5)"},
      {R"({"base": "colossus-100k", "failures": [{"name": 5, "rate_per_hour": 1e-6}]})",
       "'failures[0]': 'name' must be a string"},
      // 735,000,000 MW.
      {R"({"base": "colossus-100k", "gpus_per_node": 1e12})", "'gpus_per_node' must be an integer in [1, 576]"},
      // Overflowed the search's doubling loop and filled memory.
      {R"({"base": "colossus-100k", "gpus_per_node": 4611686018427387904})",
       "'gpus_per_node' must be an integer in [1, 576] (got number 4611686018427387904)"},
      // 200-digit step times.
      {R"({"base": "colossus-100k", "scale_out_gbps": 1e-300})", "'scale_out_gbps' must be a number in [1, 10000]"},
      {R"({"base": "colossus-100k", "num_gpus": 1000000000000})", "'num_gpus' must be an integer in [1, 10000000]"},
      {R"({"base": "colossus-100k", "pue": 1e308})", "'pue' must be a number in [1, 3]"},
  };
  for (const auto& c : cases) {
    testing::write_text(dir.file("cluster.json"), c.json);
    expect_one_line_error("--model grok-1 --cluster " + dir.file("cluster.json"), std::string("cluster.json: ") + c.error);
  }
  // A name longer than a file name can be, and a symlink loop: both threw
  // filesystem_error out of std::filesystem::exists.
  expect_one_line_error("--model grok-1 --cluster " + std::string(300, 'c'), "is neither a preset nor a readable file");
  std::filesystem::create_symlink(dir.file("b.json"), dir.file("a.json"));
  std::filesystem::create_symlink(dir.file("a.json"), dir.file("b.json"));
  expect_one_line_error("--model grok-1 --cluster " + dir.file("a.json"), "is neither a preset nor a readable file");
}

// Item 1: JSON nested 100,000 deep, as the planner's cluster file and as its
// model file. The cluster file goes through parse_json here.
TEST(PlanCli, DeeplyNestedClusterJsonIsAnError) {
  testing::TempDir dir;
  const int depth = 100000;
  testing::write_text(dir.file("x.json"),
                      "{\"model_type\": " + std::string(depth, '[') + std::string(depth, ']') + "}");
  expect_one_line_error("--model grok-1 --cluster " + dir.file("x.json"), "x.json: JSON nested more than 64 levels deep");
}

// The model file is read by ModelConfig (src/model/config.cc), with the same
// nesting bound.
TEST(PlanCli, DeeplyNestedModelJsonIsAnError) {
  testing::TempDir dir;
  const int depth = 100000;
  testing::write_text(dir.file("x.json"),
                      "{\"model_type\": " + std::string(depth, '[') + std::string(depth, ']') + "}");
  expect_one_line_error("--model " + dir.file("x.json"), "x.json: JSON nested more than 64 levels deep");
}

}  // namespace
}  // namespace sc
