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

TEST(PlanSweep, SizesAreBoundedInValueAndNumber) {
  EXPECT_TRUE(parse_sweep_spec("gpus=1,10000000").ok());
  auto huge = parse_sweep_spec("gpus=8,1000000000000");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().message(),
            "--sweep: '1000000000000' is not a GPU count in [1, 10000000] (in 'gpus=8,1000000000000')");
  std::string many = "gpus=1";
  for (int i = 2; i <= 65; ++i) many += "," + std::to_string(i);
  auto too_many = parse_sweep_spec(many);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.status().message().rfind("--sweep: at most 64 cluster sizes", 0), 0u) << too_many.status().message();
  // The spec is quoted short, however long.
  auto long_spec = parse_sweep_spec("gpus=" + std::string(100000, '9'));
  ASSERT_FALSE(long_spec.ok());
  EXPECT_LT(long_spec.status().message().size(), 250u);
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
