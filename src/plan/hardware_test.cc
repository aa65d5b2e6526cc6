#include "plan/hardware.h"

#include <gtest/gtest.h>

#include <string>

namespace sc::plan {
namespace {

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

TEST(PlanCluster, Llama3FailureRatesAddUpToTheReportsInterruptions) {
  // 419 unexpected interruptions in 54 days on 16,384 GPUs in 2,048 nodes.
  double per_hour = 0;
  for (const auto& cause : llama3_failure_rates())
    per_hour += cause.rate_per_hour * (cause.component == "node" ? 2048 : 16384);
  EXPECT_NEAR(per_hour * 54 * 24, 419, 1e-6);
}

TEST(PlanCluster, FilesOverrideTheirBaseAndErrorsNameTheField) {
  auto c = cluster_from_json(nlohmann::json{{"base", "dgx-h100"}, {"num_gpus", 64}, {"pue", 1.2},
                                            {"scale_out_gbps", 200}},
                             "mine.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->num_gpus, 64);
  EXPECT_EQ(c->pue, 1.2);
  EXPECT_EQ(c->scale_out_bytes_per_s, 25e9);  // 200 Gb/s
  EXPECT_EQ(c->gpu.name, "h100-sxm");         // from the base
  EXPECT_EQ(c->name, "dgx-h100");             // the base's, unless named
  const struct {
    nlohmann::json json;
    std::string error;
  } bad[] = {
      {{{"gpu", "h100-sxm"}}, "mine.json: 'num_gpus' is required"},
      {{{"num_gpus", 8}}, "mine.json: 'gpu' is required"},
      {{{"gpu", "tpu-v9"}, {"num_gpus", 8}}, "mine.json: 'gpu': unknown GPU 'tpu-v9'"},
      {{{"base", "dgx-h100"}, {"pue", 0.9}}, "mine.json: 'pue' must be at least 1"},
      {{{"base", "dgx-h100"}, {"cooling", "oil"}}, "mine.json: 'cooling' must be"},
      {{{"base", "dgx-h100"}, {"failures", {{{"name", "x"}, {"component", "rack"}, {"rate_per_hour", 1}}}}},
       "mine.json: 'failures[0].component' must be"},
  };
  for (const auto& b : bad) {
    auto r = cluster_from_json(b.json, "mine.json");
    ASSERT_FALSE(r.ok()) << b.json.dump();
    EXPECT_EQ(r.status().message().rfind(b.error, 0), 0u) << r.status().message();
  }
}

TEST(PlanCluster, UnknownNamesListTheKnownOnes) {
  auto gpu = gpu_by_name("h100");
  ASSERT_FALSE(gpu.ok());
  for (const auto& name : gpu_names()) EXPECT_NE(gpu.status().message().find(name), std::string::npos) << name;
  auto cluster = resolve_cluster("no-such-cluster");
  ASSERT_FALSE(cluster.ok());
  EXPECT_NE(cluster.status().message().find("colossus-100k"), std::string::npos);
}

}  // namespace
}  // namespace sc::plan
