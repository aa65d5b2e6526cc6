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
  ASSERT_TRUE(restored.restore(nlohmann::json::parse(guard.state().dump()), "state").ok());
  EXPECT_EQ(restored.bad_in_row(), 1);
  EXPECT_EQ(restored.check(9.0, 1.0, &why), guard.check(9.0, 1.0, &why));
}

TEST(LossGuard, SpikeCheckOffWithFactorZero) {
  LossGuard guard({.spike_factor = 0, .window = 2, .max_bad_in_row = 3});
  std::string why;
  for (double loss : {1.0, 1.0, 1000.0}) EXPECT_EQ(guard.check(loss, 1.0, &why), LossGuard::Verdict::kApply);
}

// Issue 15, item 4: a trainer_state.json whose 'loss_guard' held a string
// where numbers belong aborted the resume with nlohmann::type_error.
TEST(LossGuard, ARestoredStateOfTheWrongShapeIsAnErrorNamingIt) {
  LossGuard guard({.spike_factor = 2.0, .window = 4, .max_bad_in_row = 3});
  auto error = [&](const nlohmann::json& state) {
    Status s = guard.restore(state, "trainer_state.json 'loss_guard'");
    EXPECT_FALSE(s.ok()) << state.dump();
    return s.message();
  };
  EXPECT_EQ(error({{"recent_losses", "x"}}),
            "trainer_state.json 'loss_guard': 'recent_losses' must be an array (got string \"x\")");
  EXPECT_EQ(error({{"recent_losses", {1.0, "x"}}}),
            "trainer_state.json 'loss_guard': 'recent_losses' must hold numbers (got string \"x\")");
  EXPECT_EQ(error({{"recent_losses", {1, 2, 3, 4, 5}}}),
            "trainer_state.json 'loss_guard': 'recent_losses' holds 5 losses, more than the 4 the guard keeps");
  EXPECT_EQ(error({{"bad_in_row", "two"}}),
            "trainer_state.json 'loss_guard': 'bad_in_row' must be an integer in [0, 1000000] (got string \"two\")");
  EXPECT_EQ(error(5), "trainer_state.json 'loss_guard': must be a JSON object (got number 5)");
  EXPECT_TRUE(guard.restore(nlohmann::json(), "none").ok());
  EXPECT_TRUE(guard.restore({{"recent_losses", {1, 2}}, {"bad_in_row", 2}}, "ok").ok());
  EXPECT_EQ(guard.bad_in_row(), 2);
}

}  // namespace
}  // namespace sc
