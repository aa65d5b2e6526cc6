#include "train/router_health.h"

#include <gtest/gtest.h>

namespace sc {
namespace {

TEST(RouterHealth, WarnsOnceWhenAnExpertStaysIdleThenAgainAfterRecovery) {
  RouterHealth health(2, 3, 3);
  const std::vector<std::vector<int64_t>> collapsed = {{5, 5, 0}, {4, 3, 3}};
  EXPECT_TRUE(health.update(collapsed).empty());
  EXPECT_TRUE(health.update(collapsed).empty());
  auto warnings = health.update(collapsed);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "router collapse? expert 2 of MoE layer 0 has had no tokens for 3 steps");
  EXPECT_TRUE(health.update(collapsed).empty());  // said once
  EXPECT_TRUE(health.update({{5, 4, 1}, {4, 3, 3}}).empty());  // recovered
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(health.update(collapsed).empty());
  EXPECT_EQ(health.update(collapsed).size(), 1u);
}

TEST(RouterHealth, BalanceIsWorstLayerMaxOverMean) {
  EXPECT_DOUBLE_EQ(RouterHealth::balance({{4, 4, 4, 4}}), 1.0);
  EXPECT_DOUBLE_EQ(RouterHealth::balance({{4, 4, 4, 4}, {8, 0, 4, 4}}), 2.0);
  EXPECT_DOUBLE_EQ(RouterHealth::balance({}), 0.0);
}

}  // namespace
}  // namespace sc
