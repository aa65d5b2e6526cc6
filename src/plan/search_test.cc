#include "plan/search.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sc::plan {
namespace {

struct Fixture {
  PlanModel model;
  ClusterSpec cluster;
  RunSpec run{8192, 1 << 22, 1e12};
};

Fixture llama3_8b_on(int64_t gpus, const std::string& gpu = "h100-sxm") {
  Fixture f;
  f.model = *resolve_plan_model("llama3-8b");
  f.cluster = *cluster_preset("dgx-h100");
  f.cluster.num_gpus = gpus;
  f.cluster.gpu = *gpu_by_name(gpu);
  return f;
}

TEST(PlanSearch, CountsEveryLayoutOnceAndRanksTheFittingByEffectiveDays) {
  const Fixture f = llama3_8b_on(64);
  const SearchResult result = search_layouts(f.model, f.cluster, f.run, SearchSpace{});
  ASSERT_FALSE(result.fitting.empty());
  int64_t rejected = 0;
  for (const auto& [reason, count] : result.rejected) rejected += count;
  EXPECT_EQ(result.tried, static_cast<int64_t>(result.fitting.size()) + rejected);
  for (size_t i = 0; i < result.fitting.size(); ++i) {
    EXPECT_TRUE(result.fitting[i].memory.fits);
    if (i > 0) {
      EXPECT_LE(result.fitting[i - 1].effective_days, result.fitting[i].effective_days) << i;
    }
  }
  // The best one is what plan_run gives for its layout.
  const Plan& best = result.fitting.front();
  auto again = plan_run(f.model, f.cluster, best.layout, f.run);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->step.step_s, best.step.step_s);
  EXPECT_EQ(again->memory.total_bytes, best.memory.total_bytes);
}

TEST(PlanSearch, GivenFieldsStayFixedAndRejectionsAreNamedNotRaw) {
  const Fixture f = llama3_8b_on(64);
  SearchSpace space;
  space.tp = 2, space.zero = 1, space.recompute = Recompute::kFull;
  const SearchResult result = search_layouts(f.model, f.cluster, f.run, space);
  ASSERT_FALSE(result.fitting.empty());
  for (const Plan& p : result.fitting) {
    EXPECT_EQ(p.layout.tp, 2);
    EXPECT_EQ(p.layout.zero, 1);
    EXPECT_EQ(p.layout.recompute, Recompute::kFull);
  }
  // Rejections are counted under short reasons, not validate_layout's
  // messages with their numbers.
  const std::set<std::string> reasons = {"tp does not divide the attention heads", "tp does not divide the MLP width",
                                         "tp and KV heads do not divide", "tp x pp x cp does not divide the GPUs",
                                         "more pipeline stages than layers", "ep does not divide the experts",
                                         "ep does not divide dp x cp", "global batch not divisible by dp x micro-batch",
                                         "cp does not split the sequence", "does not fit in GPU memory"};
  for (const auto& [reason, count] : result.rejected) EXPECT_TRUE(reasons.count(reason)) << reason;
}

TEST(PlanSearch, WhenNothingFitsTheSmallestIsKept) {
  const Fixture f = llama3_8b_on(1, "a100-40gb");  // 8B parameters' states alone are ~130 GB
  SearchSpace space;
  space.tp = 1, space.pp = 1, space.cp = 1;  // every layout valid, none fits
  const SearchResult result = search_layouts(f.model, f.cluster, f.run, space);
  EXPECT_TRUE(result.fitting.empty());
  ASSERT_TRUE(result.smallest_unfit.has_value());
  EXPECT_FALSE(result.smallest_unfit->memory.fits);
  EXPECT_EQ(result.rejected.at("does not fit in GPU memory"), result.tried);
  // Nothing with less memory was tried: full recompute and the smallest
  // micro-batch keep the fewest activations.
  EXPECT_EQ(result.smallest_unfit->layout.recompute, Recompute::kFull);
  EXPECT_EQ(result.smallest_unfit->layout.micro_batch, 1);
}

}  // namespace
}  // namespace sc::plan
