#include "plan/search.h"

#include <gtest/gtest.h>

#include <limits>
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
                                         "tp x pp x cp is more than the GPUs",
                                         "more pipeline stages than layers", "ep does not divide the experts",
                                         "ep does not divide dp x cp", "global batch not divisible by dp x micro-batch",
                                         "cp does not split the sequence", "does not fit in GPU memory"};
  for (const auto& [reason, count] : result.rejected) EXPECT_TRUE(reasons.count(reason)) << reason;
}

// "--tp 8 x --pp 2 x --cp 1 = 16 is more than --gpus 8" names --cp and was
// counted as "cp does not split the sequence": grok-1 on 8 GPUs reported
// 17,820 layouts under it, though 8,192 tokens split for every cp tried.
TEST(PlanSearch, EachRejectionIsCountedUnderItsOwnReason) {
  Fixture f;
  f.model = *resolve_plan_model("grok-1");
  f.cluster = *cluster_preset("colossus-100k");
  f.cluster.num_gpus = 8;
  f.run = RunSpec{8192, 1 << 24, 1e12};
  const SearchResult result = search_layouts(f.model, f.cluster, f.run, SearchSpace{});
  EXPECT_EQ(result.rejected.count("cp does not split the sequence"), 0u);
  ASSERT_EQ(result.rejected.count("tp x pp x cp is more than the GPUs"), 1u);
  // Counted by hand: the (tp, pp, cp) of the search's choices whose product
  // is over 8, times the layouts of each (vp, ep, micro-batch, zero, recompute).
  int64_t too_big = 0;
  for (int64_t tp : {1, 2, 4, 8})
    for (int64_t pp : {1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 32, 64})  // grok-1 has 64 layers
      for (int64_t vp : {1, 2, 4})
        for (int64_t cp : {1, 2, 4, 8})
          for (int64_t zero : {1, 3})
            if (!(vp > 1 && pp == 1) && !(zero == 3 && pp > 1) && tp * pp * cp > 8) too_big += 4 * 3 * 3;
  EXPECT_EQ(result.rejected.at("tp x pp x cp is more than the GPUs"), too_big);
}

// A node of 2^62 GPUs (a cluster file no longer takes one) overflowed the
// doubling loop over TP degrees, which then filled memory.
TEST(PlanSearch, TpChoicesStopAtTheNodeHoweverLarge) {
  Fixture f = llama3_8b_on(64);
  f.cluster.gpus_per_node = std::numeric_limits<int64_t>::max();
  SearchSpace space;
  space.pp = 1, space.vp = 1, space.cp = 1, space.ep = 1, space.micro_batch = 1, space.zero = 1;
  space.recompute = Recompute::kFull;
  const SearchResult result = search_layouts(f.model, f.cluster, f.run, space);
  EXPECT_EQ(result.tried, 63);  // tp = 2^0 ... 2^62
}

// Flags given to a search that no layout could satisfy are one flag error
// before the search, not "no valid layout" with every layout rejected for
// the same reason.
TEST(PlanSearch, GivenFlagsAreCheckedBeforeSearching) {
  const Fixture f = llama3_8b_on(16);  // 8 KV heads, two nodes of 8
  const auto error = [&](auto set, RunSpec run = RunSpec{8192, 1 << 22, 1e12}) {
    SearchSpace space;
    set(space);
    return validate_search_space(f.model, f.cluster, run, space).message();
  };
  EXPECT_EQ(error([](SearchSpace&) {}), "");
  EXPECT_EQ(error([](SearchSpace& s) { s.vp = 2; }), "--vp 2 needs --pp > 1 (interleaving a pipeline)");
  EXPECT_EQ(error([](SearchSpace& s) { s.vp = 2, s.pp = 1; }), "--vp 2 needs --pp > 1 (interleaving a pipeline)");
  EXPECT_EQ(error([](SearchSpace& s) { s.vp = 2, s.pp = 2; }), "");
  EXPECT_EQ(error([](SearchSpace& s) { s.tp = 16; }),
            "--tp 16 is more than the 8 GPUs of a node: tensor parallelism stays inside a node's NVLink");
  EXPECT_EQ(error([](SearchSpace& s) { s.tp = 3; }), "--tp 3 does not divide num_attention_heads 32");
  EXPECT_EQ(error([](SearchSpace& s) { s.zero = 4; }), "--zero must be an integer in [0, 3] (got 4)");
  EXPECT_EQ(error([](SearchSpace& s) { s.pp = 64; }), "--pp 64 x --vp 1 is more stages than num_hidden_layers 32");
  EXPECT_EQ(error([](SearchSpace& s) { s.ep = 2; }), "--ep 2 needs a mixture-of-experts model (llama3-8b is dense)");
  EXPECT_EQ(error([](SearchSpace& s) { s.cp = 3; }), "--cp 3: --seq-len 8192 must split into 2 x cp equal chunks");
  EXPECT_EQ(error([](SearchSpace& s) { s.micro_batch = 3; }),
            "--micro-batch 3 does not divide the 512 sequences of --global-batch-tokens 4194304");
  EXPECT_EQ(error([](SearchSpace&) {}, RunSpec{8192, 1000, 1e12}),
            "--global-batch-tokens 1000 is not a multiple of --seq-len 8192");
  EXPECT_EQ(error([](SearchSpace&) {}, RunSpec{8192, 1 << 24, std::numeric_limits<double>::infinity()}),
            "--train-tokens must be a number in [1, 1000000000000000] (got inf)");
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
