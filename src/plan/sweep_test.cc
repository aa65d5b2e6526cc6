#include "plan/sweep.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sc::plan {
namespace {

TEST(PlanSweep, SpecParsing) {
  auto ok = parse_sweep_spec("gpus=1024,4096,16384,100000");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, (std::vector<int64_t>{1024, 4096, 16384, 100000}));
  EXPECT_FALSE(parse_sweep_spec("gpus=").ok());
  EXPECT_FALSE(parse_sweep_spec("gpus=8,,16").ok());
  EXPECT_FALSE(parse_sweep_spec("gpus=-8").ok());
  EXPECT_FALSE(parse_sweep_spec("1024").ok());
}

TEST(PlanSweep, ErrorsNameTheFlagAndTheBadElement) {
  auto bad = parse_sweep_spec("gpus=8,x16,32");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("--sweep: 'x16'", 0), 0u) << bad.status().message();
  auto no_prefix = parse_sweep_spec("8,16");
  ASSERT_FALSE(no_prefix.ok());
  EXPECT_EQ(no_prefix.status().message().rfind("--sweep must be gpus=", 0), 0u) << no_prefix.status().message();
}

TEST(PlanSweep, EachSizeGetsTheSearchsBestOrSaysWhyNone) {
  auto model = resolve_plan_model("llama3-8b");
  auto cluster = cluster_preset("dgx-h100");
  ASSERT_TRUE(model.ok() && cluster.ok());
  const RunSpec run{8192, 1 << 22, 1e12};
  const std::vector<int64_t> sizes = {1, 8, 64};
  const auto points = run_sweep(*model, *cluster, run, SearchSpace{}, sizes);
  ASSERT_EQ(points.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) EXPECT_EQ(points[i].gpus, sizes[i]);
  // 8B parameters of weights and Adam states (16 B each) do not fit one 80 GB GPU.
  EXPECT_FALSE(points[0].best.has_value());
  EXPECT_EQ(points[0].why_none.rfind("nothing fits", 0), 0u) << points[0].why_none;
  for (size_t i = 1; i < sizes.size(); ++i) {
    ASSERT_TRUE(points[i].best.has_value()) << sizes[i] << ": " << points[i].why_none;
    EXPECT_LE(points[i].best->num_gpus, sizes[i]);
    // The same as a search of a cluster of that size.
    ClusterSpec sized = *cluster;
    sized.num_gpus = sizes[i];
    const SearchResult search = search_layouts(*model, sized, run, SearchSpace{});
    ASSERT_FALSE(search.fitting.empty());
    EXPECT_EQ(points[i].best->effective_days, search.fitting.front().effective_days);
  }
  EXPECT_LT(points[2].best->effective_days, points[1].best->effective_days);
}

}  // namespace
}  // namespace sc::plan
