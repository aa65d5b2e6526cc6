#include "train/step_stats.h"

#include <gtest/gtest.h>

namespace sc {
namespace {

RankStepStats stats_of(std::vector<double> loss, CheckpointPart part, std::vector<int64_t> routed, bool time_up = false) {
  RankStepStats s;
  s.loss = loss;
  for (double l : loss) {
    s.aux.push_back(l / 10);
    s.z.push_back(l / 100);
  }
  s.checkpoint = part;
  s.routed = routed;
  s.dropped = static_cast<int64_t>(routed.size());
  s.time_up = time_up;
  return s;
}

TEST(StepStats, PackedStatisticsUnpackToTheSame) {
  const RankStepStats s = stats_of({2.5, 3.25}, CheckpointPart::kFailed, {7, 0, 123456789012, 1}, true);
  const std::vector<double> packed = pack_step_stats(s);
  auto back = unpack_step_stats(packed, 2, 4);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->loss, s.loss);
  EXPECT_EQ(back->aux, s.aux);
  EXPECT_EQ(back->z, s.z);
  EXPECT_EQ(back->routed, s.routed);
  EXPECT_EQ(back->dropped, 4);
  EXPECT_TRUE(back->time_up);
  EXPECT_EQ(back->checkpoint, CheckpointPart::kFailed);
  // Another rank's shape is an error, not a misread.
  auto wrong = unpack_step_stats(packed, 3, 4);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("expected"), std::string::npos);
}

TEST(StepStats, CombinesInGlobalMicroBatchOrder) {
  // Values whose double sum depends on the order of addition.
  const std::vector<RankStepStats> by_rank = {stats_of({1e16, 1.0}, CheckpointPart::kWritten, {1, 2, 3, 4}),
                                              stats_of({-1e16, 1.0}, CheckpointPart::kWritten, {10, 20, 30, 40})};
  const StepStats g = combine_step_stats(by_rank, 2, 2);
  double expected = 0;
  for (double l : {1e16, 1.0, -1e16, 1.0}) expected += l;  // rank 0's micro-batches, then rank 1's
  EXPECT_EQ(g.loss, expected / 4);
  EXPECT_EQ(g.expert_tokens, (std::vector<std::vector<int64_t>>{{11, 22}, {33, 44}}));
  EXPECT_EQ(g.dropped, 8);
  EXPECT_TRUE(g.checkpoint_files_written);
  EXPECT_EQ(g.checkpoint_failed_rank, -1);
  EXPECT_FALSE(g.time_up);
}

TEST(StepStats, OneRankDecidesTheTimeLimitAndAnyRankBlocksTheCommit) {
  const std::vector<RankStepStats> by_rank = {stats_of({1}, CheckpointPart::kWritten, {}),
                                              stats_of({1}, CheckpointPart::kBusy, {}, /*time_up=*/true),
                                              stats_of({1}, CheckpointPart::kFailed, {}),
                                              stats_of({1}, CheckpointPart::kFailed, {})};
  const StepStats g = combine_step_stats(by_rank, 0, 0);
  EXPECT_TRUE(g.time_up);
  EXPECT_FALSE(g.checkpoint_files_written);
  EXPECT_EQ(g.checkpoint_failed_rank, 2);  // the first that failed
}

}  // namespace
}  // namespace sc
