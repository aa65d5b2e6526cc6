#include "dist/allreduce_timing.h"

#include <gtest/gtest.h>

#include <vector>

#include "dist/single_process.h"

namespace sc {
namespace {

TEST(DistAllReduceTiming, OneTimingPerSizeInOrderReportedAsItGoes) {
  SingleProcessCommunicator comm;
  const std::vector<size_t> sizes = {16, 4096, 1 << 16};
  AllReduceTimingOptions options;
  options.min_repeats = 2, options.max_repeats = 4, options.budget_s = 0;
  std::vector<size_t> seen;
  auto timings = time_all_reduce(comm, sizes, options, [&](const AllReduceTiming& t) { seen.push_back(t.bytes); });
  ASSERT_TRUE(timings.ok()) << timings.status().message();
  ASSERT_EQ(timings->size(), sizes.size());
  EXPECT_EQ(seen, sizes);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ((*timings)[i].bytes, sizes[i]);
    // A real measurement, not the "no run yet" sentinel.
    EXPECT_GE((*timings)[i].best_s, 0.0);
    EXPECT_LT((*timings)[i].best_s, 1.0);
  }
}

}  // namespace
}  // namespace sc
