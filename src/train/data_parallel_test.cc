#include "train/data_parallel.h"

#include <gtest/gtest.h>

#include <random>

#include "dist/single_process.h"
#include "model/safetensors.h"
#include "kernels/elementwise.h"
#include "run/run_paths.h"
#include "train/optimizer_shards.h"
#include "test_util.h"

namespace sc {
namespace {

TEST(BucketPlan, BucketsCoverTheBufferBackToFrontInEqualShards) {
  const size_t unit = BucketPlan::granule(2);
  auto plan = BucketPlan::make(7 * unit, 2, 3 * unit - 5);  // rounds up to 3 units
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(plan->buckets().size(), 3u);
  size_t end = 7 * unit;
  for (const BufferRange& b : plan->buckets()) {
    EXPECT_EQ(b.end, end) << "buckets run from the end of the buffer, where backward finishes first";
    EXPECT_EQ(b.size() % unit, 0u);
    end = b.begin;
  }
  EXPECT_EQ(end, 0u);
  EXPECT_EQ(plan->buckets().back().size(), unit);  // the remainder
  for (int r = 0; r < 2; ++r) {
    size_t local = 0;
    for (const OwnedSegment& s : plan->owned(r)) {
      EXPECT_EQ(s.local, local);
      EXPECT_EQ(s.begin % kSumSquaresChunk, 0u) << "shards never split a gradient-norm chunk";
      local += s.end - s.begin;
    }
    EXPECT_EQ(local, plan->owned_floats());
  }
  EXPECT_EQ(plan->shard(0, 1).end, plan->buckets()[0].end);
  EXPECT_EQ(plan->shard(0, 0).end, plan->shard(0, 1).begin);
  EXPECT_FALSE(BucketPlan::make(unit + 1, 2, unit).ok());
  EXPECT_FALSE(BucketPlan::make(unit, 0, unit).ok());
}

std::vector<float> random_floats(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

TEST(GradientSync, SumsMicroBatchesPairwiseAndTheNormInBufferOrder) {
  ThreadPool pool(2);
  SingleProcessCommunicator comm;
  const size_t n = 4 * BucketPlan::granule(1);
  auto plan = BucketPlan::make(n, 1, BucketPlan::granule(1));
  ASSERT_TRUE(plan.ok());
  std::vector<float> grads(n), params(n, 0.0f);
  auto sync = GradientSync::create(comm, pool, *plan, grads.data(), params.data(), 4);
  ASSERT_TRUE(sync.ok()) << sync.status().message();
  // Magnitudes far apart, so the grouping of the sums shows in the bits.
  std::vector<std::vector<float>> g;
  for (uint32_t m = 0; m < 4; ++m) g.push_back(random_floats(n, m, m % 2 ? 1e-3f : 1e3f));
  for (int m = 0; m < 3; ++m) {
    grads = g[static_cast<size_t>(m)];
    ASSERT_TRUE(sync->accumulate().ok());
  }
  grads = g[3];
  // The last micro-batch: buckets reported final from the end, as backward does.
  for (size_t offset : {3 * n / 4, n / 2, size_t{0}}) ASSERT_TRUE(sync->grads_final(offset).ok());
  ASSERT_TRUE(sync->finish_reduce(CollectiveTimeout(1000)).ok());
  size_t left_fold_differs = 0;
  for (size_t i = 0; i < n; ++i) {
    const float pairwise = (g[0][i] + g[1][i]) + (g[2][i] + g[3][i]);
    ASSERT_EQ(grads[i], pairwise) << "element " << i;
    left_fold_differs += ((g[0][i] + g[1][i]) + g[2][i]) + g[3][i] != pairwise;
  }
  EXPECT_GT(left_fold_differs, 0u) << "the data cannot tell pairwise from left-fold summation";

  auto exchanged = sync->exchange({1.5, -2.0}, CollectiveTimeout(1000));
  ASSERT_TRUE(exchanged.ok());
  std::vector<double> scratch(sum_squares_scratch_doubles(n));
  EXPECT_EQ(exchanged->sum_squares, sum_squares(pool, grads.data(), n, scratch.data()));
  ASSERT_EQ(exchanged->by_rank.size(), 1u);
  EXPECT_EQ(exchanged->by_rank[0], (std::vector<double>{1.5, -2.0}));

  // A second step reuses the partial-sum buffers.
  for (int m = 0; m < 3; ++m) {
    grads = g[3 - static_cast<size_t>(m)];
    ASSERT_TRUE(sync->accumulate().ok());
  }
  grads = g[0];
  ASSERT_TRUE(sync->finish_reduce(CollectiveTimeout(1000)).ok());
  EXPECT_EQ(grads[5], (g[3][5] + g[2][5]) + (g[1][5] + g[0][5]));
  // More micro-batches than planned is an error, not a silent wrong sum.
  for (int m = 0; m < 3; ++m) ASSERT_TRUE(sync->accumulate().ok());
  EXPECT_FALSE(sync->accumulate().ok());
}

// Moments whose value tells which parameter they belong to.
float moment_of(size_t index, bool second) { return static_cast<float>(index) * (second ? -1.0f : 1.0f) + 0.5f; }

TEST(OptimizerShards, MomentsWrittenOnFourRanksLoadOnAnyNumber) {
  testing::TempDir dir;
  const size_t num_floats = 3 * kSumSquaresChunk + 123;  // the layout's extent; the rest is padding
  auto make_adamw = [&](int rank, int world, std::vector<float>& m, std::vector<float>& v) {
    const size_t unit = BucketPlan::granule(world);
    auto plan = BucketPlan::make((num_floats + unit - 1) / unit * unit, world, kSumSquaresChunk * 2);
    EXPECT_TRUE(plan.ok());
    m.assign(plan->owned_floats(), 0.0f);
    v.assign(plan->owned_floats(), 0.0f);
    return AdamW(AdamWConfig{}, {{0, num_floats, true}}, plan->owned(rank), m.data(), v.data(), m.size());
  };
  for (int rank = 0; rank < 4; ++rank) {
    std::vector<float> m, v;
    AdamW adamw = make_adamw(rank, 4, m, v);
    for (const OwnedSegment& s : adamw.segments()) {
      for (size_t i = s.begin; i < s.end; ++i) {
        m[s.local + i - s.begin] = moment_of(i, false);
        v[s.local + i - s.begin] = moment_of(i, true);
      }
    }
    ASSERT_TRUE(save_optimizer_shard(dir.path(), rank, 4, adamw.segments(), m, v, num_floats, 7).ok());
  }
  for (int world : {1, 2, 3, 4}) {
    for (int rank = 0; rank < world; ++rank) {
      std::vector<float> m, v;
      AdamW adamw = make_adamw(rank, world, m, v);
      Status loaded = load_optimizer_shards(dir.path(), adamw, num_floats);
      ASSERT_TRUE(loaded.ok()) << loaded.message();
      for (const OwnedSegment& s : adamw.segments()) {
        for (size_t i = s.begin; i < std::min(s.end, num_floats); ++i) {
          ASSERT_EQ(m[s.local + i - s.begin], moment_of(i, false)) << "world " << world << " rank " << rank << " at " << i;
          ASSERT_EQ(v[s.local + i - s.begin], moment_of(i, true)) << "world " << world << " rank " << rank << " at " << i;
        }
      }
    }
  }
  std::filesystem::remove(dir.file(checkpoint_file::optimizer_shard(2, 4)));
  std::vector<float> m, v;
  AdamW adamw = make_adamw(0, 1, m, v);
  Status missing = load_optimizer_shards(dir.path(), adamw, num_floats);
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("3 of the 4 optimizer files"), std::string::npos) << missing.message();
}

// Issue 15, item 1: the 'segments' metadata of an optimizer file is JSON
// inside the safetensors header; nested 100,000 deep it crashed the error
// message that printed it, and an entry whose local offset wraps passed the
// bounds check and was copied from outside the file.
TEST(OptimizerShards, NestedOrWrappingSegmentsAreRefused) {
  testing::TempDir dir;
  const std::vector<float> m(64, 0.0f);
  const std::vector<int64_t> shape = {64};
  const std::vector<TensorToWrite> moments = {{"adamw.m", DType::kF32, shape, m.data()},
                                              {"adamw.v", DType::kF32, shape, m.data()}};
  const std::string path = dir.file(checkpoint_file::optimizer_shard(0, 1));
  auto load_with_segments = [&](const std::string& segments) {
    EXPECT_TRUE(write_safetensors(path, moments, {{"segments", segments}}).ok());
    std::vector<float> mine_m(64), mine_v(64);
    AdamW adamw(AdamWConfig{}, {{0, 64, true}}, {{0, 64, 0}}, mine_m.data(), mine_v.data(), 64);
    return load_optimizer_shards(dir.path(), adamw, 64);
  };
  const size_t depth = 100000;
  Status nested = load_with_segments(std::string(depth, '[') + std::string(depth, ']'));
  EXPECT_EQ(nested.code(), StatusCode::kCorruption);
  EXPECT_NE(nested.message().find(path + ": metadata 'segments': JSON nested more than 64 levels deep"),
            std::string::npos) << nested.message();
  Status shallow = load_with_segments("[[[[[[[[1]]]]]]]]");
  EXPECT_NE(shallow.message().find("'segments' entry an array of 1 is not [begin, end, local]"), std::string::npos)
      << shallow.message();
  Status wrapping = load_with_segments("[[0, 64, 18446744073709551615]]");
  EXPECT_NE(wrapping.message().find("segment [0, 64, 18446744073709551615] lies outside its 64 moments"),
            std::string::npos) << wrapping.message();
}

}  // namespace
}  // namespace sc
