#include "train/loss_guard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace sc {
namespace {

TEST(LossGuard, SkipsNonFiniteAndSpikesThenRollsBack) {
  LossGuard guard({.spike_factor = 2.0, .window = 4, .max_bad_in_row = 2});
  std::string why;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(guard.check(nan, 1.0, &why), LossGuard::Verdict::kSkip);
  EXPECT_NE(why.find("non-finite loss"), std::string::npos) << why;
  EXPECT_EQ(guard.check(5.0, 1.0, &why), LossGuard::Verdict::kApply);  // ends the bad run
  // Too little history for a spike verdict (needs window / 2 = 2 steps).
  EXPECT_EQ(guard.check(50.0, 1.0, &why), LossGuard::Verdict::kApply);
  for (double loss : {5.0, 4.0, 4.0, 4.0}) EXPECT_EQ(guard.check(loss, 1.0, &why), LossGuard::Verdict::kApply);
  // Window [5, 4, 4, 4]: mean 4.25, and 8.5 is not above 2 x that.
  EXPECT_EQ(guard.check(8.5, 1.0, &why), LossGuard::Verdict::kApply);
  // Window [4, 4, 4, 8.5]: mean 5.125, limit 10.25.
  EXPECT_EQ(guard.check(8.6, std::numeric_limits<double>::infinity(), &why), LossGuard::Verdict::kSkip);
  EXPECT_NE(why.find("non-finite gradient norm (inf, loss 8.6000)"), std::string::npos) << why;
  EXPECT_EQ(guard.check(11.0, 1.0, &why), LossGuard::Verdict::kRollback);  // the second bad step in a row
  EXPECT_NE(why.find("loss spike: 11.0000 is more than 2 x the mean 5.1250 of the last 4 steps"), std::string::npos)
      << why;
  EXPECT_EQ(guard.bad_in_row(), 0);
  EXPECT_EQ(guard.check(12.0, 1.0, &why), LossGuard::Verdict::kSkip);

  // The state round-trips (a resumed run decides as the straight one would).
  LossGuard restored({.spike_factor = 2.0, .window = 4, .max_bad_in_row = 2});
  restored.restore(nlohmann::json::parse(guard.state().dump()));
  EXPECT_EQ(restored.bad_in_row(), 1);
  EXPECT_EQ(restored.check(9.0, 1.0, &why), guard.check(9.0, 1.0, &why));
}

TEST(LossGuard, SpikeCheckOffWithFactorZero) {
  LossGuard guard({.spike_factor = 0, .window = 2, .max_bad_in_row = 3});
  std::string why;
  for (double loss : {1.0, 1.0, 1000.0}) EXPECT_EQ(guard.check(loss, 1.0, &why), LossGuard::Verdict::kApply);
}

}  // namespace
}  // namespace sc
