#include "launch/restart_policy.h"

#include <gtest/gtest.h>

namespace sc {
namespace {

FailedAttempt failure(int attempt, bool progressed, bool exit_failure, const std::string& signature) {
  return {.attempt = attempt,
          .progressed = progressed,
          .exit_failure = exit_failure,
          .exit_code = 1,
          .signature = signature};
}

TEST(RestartBackoff, DoublesPerFailureInARowAndIsCapped) {
  EXPECT_DOUBLE_EQ(restart_backoff_s(2, 60, 1), 2);
  EXPECT_DOUBLE_EQ(restart_backoff_s(2, 60, 2), 4);
  EXPECT_DOUBLE_EQ(restart_backoff_s(2, 60, 5), 32);
  EXPECT_DOUBLE_EQ(restart_backoff_s(2, 60, 6), 60);
  EXPECT_DOUBLE_EQ(restart_backoff_s(2, 60, 1000), 60);
  EXPECT_DOUBLE_EQ(restart_backoff_s(0, 60, 3), 0);
}

TEST(RestartPolicy, FirstAttemptExitingBeforeAnyStepIsNotRestarted) {
  RestartPolicy policy(5, 1, 60);
  RestartDecision d = policy.on_failure(failure(1, false, true, "exit|bad flag"));
  EXPECT_FALSE(d.restart);
  EXPECT_NE(d.why_not.find("before completing a step (exit code 1)"), std::string::npos) << d.why_not;
  EXPECT_EQ(policy.restarts(), 0);
}

TEST(RestartPolicy, FirstAttemptCrashOrExitAfterProgressIsRestarted) {
  RestartPolicy crash(5, 1, 60);
  EXPECT_TRUE(crash.on_failure(failure(1, false, false, "signal|9")).restart);
  RestartPolicy exit_after_steps(5, 1, 60);
  EXPECT_TRUE(exit_after_steps.on_failure(failure(1, true, true, "exit|timeout")).restart);
}

TEST(RestartPolicy, SameFailureTwiceInARowWithoutProgressStops) {
  RestartPolicy policy(10, 1, 60);
  EXPECT_TRUE(policy.on_failure(failure(1, true, true, "exit|x")).restart);
  EXPECT_TRUE(policy.on_failure(failure(2, false, true, "exit|x")).restart);  // previous one progressed
  RestartDecision d = policy.on_failure(failure(3, false, true, "exit|x"));
  EXPECT_FALSE(d.restart);
  EXPECT_NE(d.why_not.find("attempts 2 and 3 failed the same way"), std::string::npos) << d.why_not;
}

TEST(RestartPolicy, DifferentFailuresWithoutProgressDoubleTheBackoffUntilTheLimit) {
  RestartPolicy policy(3, 1, 3);
  RestartDecision a = policy.on_failure(failure(1, false, false, "signal|9"));
  RestartDecision b = policy.on_failure(failure(2, false, false, "signal|15"));
  RestartDecision c = policy.on_failure(failure(3, false, false, "signal|9"));
  RestartDecision d = policy.on_failure(failure(4, false, false, "signal|15"));
  EXPECT_TRUE(a.restart && b.restart && c.restart);
  EXPECT_DOUBLE_EQ(a.backoff_s, 1);
  EXPECT_DOUBLE_EQ(b.backoff_s, 2);
  EXPECT_DOUBLE_EQ(c.backoff_s, 3);  // capped
  EXPECT_FALSE(d.restart);
  EXPECT_NE(d.why_not.find("restart limit reached (3 restarts, --max-restarts)"), std::string::npos) << d.why_not;
  EXPECT_EQ(policy.restarts(), 3);
}

TEST(RestartPolicy, ProgressResetsTheBackoff) {
  RestartPolicy policy(10, 1, 60);
  EXPECT_DOUBLE_EQ(policy.on_failure(failure(1, false, false, "a")).backoff_s, 1);
  EXPECT_DOUBLE_EQ(policy.on_failure(failure(2, false, false, "b")).backoff_s, 2);
  EXPECT_DOUBLE_EQ(policy.on_failure(failure(3, true, false, "b")).backoff_s, 1);
}

TEST(RestartPolicy, ZeroRestartsAllowedGivesUpAtOnce) {
  RestartPolicy policy(0, 1, 60);
  RestartDecision d = policy.on_failure(failure(1, true, false, "signal|9"));
  EXPECT_FALSE(d.restart);
  EXPECT_NE(d.why_not.find("0 restarts"), std::string::npos);
}

}  // namespace
}  // namespace sc
