#include "plan/hardware.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"

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
      {{{"base", "dgx-h100"}, {"pue", 0.9}}, "mine.json: 'pue' must be a number in [1, 3]"},
      {{{"base", "dgx-h100"}, {"cooling", "oil"}}, "mine.json: 'cooling' must be"},
      {{{"base", "dgx-h100"}, {"failures", {{{"name", "x"}, {"component", "rack"}, {"rate_per_hour", 1}}}}},
       "mine.json: 'failures[0]': 'component' must be"},
  };
  for (const auto& b : bad) {
    auto r = cluster_from_json(b.json, "mine.json");
    ASSERT_FALSE(r.ok()) << b.json.dump();
    EXPECT_EQ(r.status().message().rfind(b.error, 0), 0u) << r.status().message();
  }
}

// Each field of a cluster file of the wrong type: an error naming the file
// and the field, never nlohmann's type_error out of a get<>() (which aborted
// the program on "name": 5).
TEST(PlanCluster, FieldsOfTheWrongTypeAreErrorsNamingTheField) {
  const nlohmann::json base = {{"base", "dgx-h100"}};
  const struct {
    const char* key;
    nlohmann::json value;
  } cases[] = {
      {"name", 5},
      {"name", nlohmann::json::array({1, 2})},
      {"base", 7},
      {"gpu", true},
      {"num_gpus", "64"},
      {"num_gpus", 64.5},
      {"gpus_per_node", nlohmann::json::object()},
      {"pod_gpus", "0"},
      {"scale_out_gbps", "400"},
      {"pue", nullptr},  // null is "absent": the base's value stays
      {"cooling", 1},
      {"failures", "many"},
      {"failures", nlohmann::json::array({5})},
      {"failures", nlohmann::json::array({{{"name", 5}, {"rate_per_hour", 1e-6}}})},
      {"failures", nlohmann::json::array({{{"name", "x"}, {"component", 2}, {"rate_per_hour", 1e-6}}})},
      {"failures", nlohmann::json::array({{{"name", "x"}, {"rate_per_hour", "often"}}})},
  };
  for (const auto& c : cases) {
    nlohmann::json json = base;
    json[c.key] = c.value;
    Result<ClusterSpec> r = Status::internal("not run");
    ASSERT_NO_THROW(r = cluster_from_json(json, "mine.json")) << json.dump();
    if (c.value.is_null()) {
      EXPECT_TRUE(r.ok()) << r.status().message();
      continue;
    }
    ASSERT_FALSE(r.ok()) << json.dump();
    const std::string& message = r.status().message();
    EXPECT_EQ(message.rfind(fmt::format("mine.json: '{}", c.key), 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  auto not_object = cluster_from_json(nlohmann::json::array(), "mine.json");
  ASSERT_FALSE(not_object.ok());
  EXPECT_EQ(not_object.status().message(), "mine.json: must be a JSON object (got an array of 0)");
}

// Every number of a cluster file has a documented range (docs/plan.md,
// "Input ranges"); the error names the file, the field and the range.
TEST(PlanCluster, EveryFieldHasItsRange) {
  const struct {
    const char* key;
    nlohmann::json value;
    const char* error;
  } cases[] = {
      // 735,000,000 MW: a node of 10^12 GPUs, all powered.
      {"gpus_per_node", 1e12, "mine.json: 'gpus_per_node' must be an integer in [1, 576] (got number 1000000000000.0)"},
      {"gpus_per_node", 1000000000000, "mine.json: 'gpus_per_node' must be an integer in [1, 576] (got number 1000000000000)"},
      // The search's doubling loop over TP degrees overflowed past 2^62.
      {"gpus_per_node", int64_t{1} << 62, "mine.json: 'gpus_per_node' must be an integer in [1, 576]"},
      {"num_gpus", 1000000000000, "mine.json: 'num_gpus' must be an integer in [1, 10000000]"},
      {"num_gpus", 0, "mine.json: 'num_gpus' must be an integer in [1, 10000000]"},
      {"gpus_per_rack", 100000, "mine.json: 'gpus_per_rack' must be an integer in [1, 1024]"},
      {"fabric_tiers", 99, "mine.json: 'fabric_tiers' must be an integer in [1, 8]"},
      {"pod_gpus", -1, "mine.json: 'pod_gpus' must be an integer in [0, 10000000]"},
      // 200-digit step times.
      {"scale_out_gbps", 1e-300, "mine.json: 'scale_out_gbps' must be a number in [1, 10000]"},
      {"scale_out_gbps", 1e300, "mine.json: 'scale_out_gbps' must be a number in [1, 10000]"},
      {"scale_out_efficiency", 0, "mine.json: 'scale_out_efficiency' must be a number in [0.01, 1]"},
      {"nvlink_efficiency", 1.5, "mine.json: 'nvlink_efficiency' must be a number in [0.01, 1]"},
      {"oversubscription", 0.5, "mine.json: 'oversubscription' must be a number in [1, 100]"},
      {"hop_latency_us", 1e9, "mine.json: 'hop_latency_us' must be a number in [0, 1000]"},
      {"node_power_beyond_gpus_w", 1e12, "mine.json: 'node_power_beyond_gpus_w' must be a number in [0, 500000]"},
      {"network_storage_power_fraction", 2, "mine.json: 'network_storage_power_fraction' must be a number in [0, 1]"},
      {"pue", 1e6, "mine.json: 'pue' must be a number in [1, 3]"},
      {"gpu_hour_usd", -2, "mine.json: 'gpu_hour_usd' must be a number in [0, 1000]"},
      {"storage_write_gbps", 0, "mine.json: 'storage_write_gbps' must be a number in [1, 1000000]"},
      {"restart_s", 1e30, "mine.json: 'restart_s' must be a number in [0, 86400]"},
      {"gpu_speed_variation", 1, "mine.json: 'gpu_speed_variation' must be a number in [0, 0.5]"},
      {"name", std::string(1000, 'n'), "mine.json: 'name' must be a string of at most 256 bytes"},
      {"failures", nlohmann::json::array({{{"name", "x"}, {"rate_per_hour", 5}}}),
       "mine.json: 'failures[0]': 'rate_per_hour' must be a number in [0, 1]"},
      {"failures", std::vector<nlohmann::json>(1001, {{"name", "x"}, {"rate_per_hour", 0}}),
       "mine.json: 'failures' must have at most 1000 causes (got 1001)"},
  };
  for (const auto& c : cases) {
    nlohmann::json json = {{"base", "dgx-h100"}};
    json[c.key] = c.value;
    auto r = cluster_from_json(json, "mine.json");
    ASSERT_FALSE(r.ok()) << c.key << " " << c.value.dump().substr(0, 80);
    EXPECT_EQ(r.status().message().rfind(c.error, 0), 0u) << r.status().message();
    EXPECT_LT(r.status().message().size(), 200u) << r.status().message();
  }
  // The ends of each range are accepted.
  auto edges = cluster_from_json({{"gpu", "b200"}, {"num_gpus", 10000000}, {"gpus_per_node", 576},
                                  {"scale_out_gbps", 1}, {"pue", 3}, {"gpu_speed_variation", 0}, {"restart_s", 0}},
                                 "mine.json");
  ASSERT_TRUE(edges.ok()) << edges.status().message();
  EXPECT_EQ(edges->num_nodes(), 17362);
}

TEST(PlanCluster, UnknownKeysAndNamesAreQuotedShort) {
  auto r = cluster_from_json({{"base", "dgx-h100"}, {std::string(100000, 'k'), 1}}, "mine.json");
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 200u);
  EXPECT_NE(r.status().message().find("is not a cluster field"), std::string::npos) << r.status().message();
  auto gpu = gpu_by_name(std::string(100000, 'g'));
  ASSERT_FALSE(gpu.ok());
  EXPECT_LT(gpu.status().message().size(), 200u);
}

// A cluster path that names no readable file, or a file that is not a
// cluster: one line, never filesystem_error out of std::filesystem::exists
// (it threw on a name longer than the file system takes and on a symlink
// loop), nor a read that never ends, nor a parse that recurses 100k deep.
TEST(PlanCluster, PathsThatAreNotClusterFilesAreErrors) {
  testing::TempDir dir;
  const std::string loop = dir.file("loop.json");
  std::filesystem::create_symlink(dir.file("loop2.json"), loop);
  std::filesystem::create_symlink(loop, dir.file("loop2.json"));
  const int depth = 100000;
  testing::write_text(dir.file("nested.json"),
                      "{\"name\": " + std::string(depth, '[') + std::string(depth, ']') + "}");
  testing::write_text(dir.file("big.json"), "{\"name\": \"" + std::string(2 << 20, 'x') + "\"}");
  const struct {
    std::string path;
    const char* error;
  } cases[] = {
      {std::string(300, 'a'), "is neither a preset nor a readable file (File name too long)"},
      {loop, "is neither a preset nor a readable file (Too many levels of symbolic links)"},
      {dir.path(), "is a directory, not a cluster file"},
      {dir.file("nested.json"), "nested.json: JSON nested more than 64 levels deep"},
      {dir.file("big.json"), "a cluster file must be at most 1048576 bytes"},
      {"/dev/zero", "'/dev/zero': a cluster file must be at most 1048576 bytes"},
  };
  for (const auto& c : cases) {
    Result<ClusterSpec> r = Status::internal("not run");
    ASSERT_NO_THROW(r = resolve_cluster(c.path)) << c.path.substr(0, 80);
    ASSERT_FALSE(r.ok()) << c.path.substr(0, 80);
    EXPECT_NE(r.status().message().find(c.error), std::string::npos) << r.status().message();
    EXPECT_LT(r.status().message().size(), 400u) << r.status().message();
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
