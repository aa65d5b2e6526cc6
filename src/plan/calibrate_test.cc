#include "plan/calibrate.h"

#include <gtest/gtest.h>

#include <string>

namespace sc::plan {
namespace {

TEST(PlanCalibrate, WorkerLinesRoundTripAndOtherOutputIsIgnored) {
  const std::string output = "[node:1234] some mpirun warning\n" + allreduce_timing_line(4096, 2e-6) + "\n" +
                             "allreduce garbage\n" + allreduce_timing_line(1 << 20, 0.0005) + "\n" +
                             "allreduce 64 0\n";  // a zero time cannot be a measurement
  const auto points = parse_allreduce_timing_lines(output);
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].bytes, 4096);
  EXPECT_DOUBLE_EQ(points[0].seconds, 2e-6);
  EXPECT_DOUBLE_EQ(points[0].bus_gbps, 4096 / 2e-6 / 1e9);  // 2 ranks: bus bandwidth = bytes / time
  EXPECT_EQ(points[1].bytes, 1 << 20);
  EXPECT_NEAR(points[1].bus_gbps, 2.097152, 1e-9);
  EXPECT_TRUE(parse_allreduce_timing_lines("").empty());
}

TEST(PlanCalibrate, AllReduceSizesAreWholeFloatsAndGrow) {
  const auto sizes = allreduce_calibration_sizes_bytes();
  ASSERT_FALSE(sizes.empty());
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(sizes[i] % sizeof(float), 0u) << sizes[i];
    if (i > 0) {
      EXPECT_GT(sizes[i], sizes[i - 1]);
    }
  }
}

}  // namespace
}  // namespace sc::plan
