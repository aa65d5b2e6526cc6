#include "plan/kernel_model.h"

#include <gtest/gtest.h>

namespace sc::plan {
namespace {

GpuSpec h100() {
  auto gpu = gpu_by_name("h100-sxm");
  EXPECT_TRUE(gpu.ok());
  return *gpu;
}

TEST(PlanKernelModel, AGemmThatFillsOneWaveRunsAtTheSustainedCeiling) {
  const GpuSpec gpu = h100();
  ASSERT_EQ(gpu.sm_count, 132);
  // 12 x 11 tiles of 128 x 256 = 132: one full wave, compute-bound at k = 8192.
  const double m = 12 * 128, n = 11 * 256, k = 8192;
  const double flops = 2 * m * n * k;
  EXPECT_NEAR(gemm_time_s(gpu, m, n, k), flops / (gpu.bf16_flops * gpu.gemm_efficiency) + kKernelOverheadS, 1e-12);
  // One more row of output starts a 13th tile row: 143 tiles need 2 waves of
  // 132, so the compute runs at 143 / 264 of the ceiling.
  EXPECT_NEAR(gemm_time_s(gpu, m + 1, n, k),
              2 * (m + 1) * n * k / (gpu.bf16_flops * gpu.gemm_efficiency * 143.0 / 264) + kKernelOverheadS, 1e-12);
}

TEST(PlanKernelModel, ThinGemmsAreBoundByMemoryAndEfficiencyRisesWithSize) {
  const GpuSpec gpu = h100();
  // A matrix-vector product: reads the whole k x n matrix once.
  const double n = 16384, k = 16384;
  EXPECT_NEAR(gemm_time_s(gpu, 1, n, k), stream_time_s(gpu, 2 * (k + k * n + n)) + kKernelOverheadS, 1e-12);
  double previous = 0;
  for (double side : {256.0, 1024.0, 4096.0, 16384.0}) {
    const double e = gemm_efficiency(gpu, side, side, side);
    EXPECT_GT(e, previous) << side;
    EXPECT_LE(e, gpu.gemm_efficiency) << side;  // never above the sustained ceiling
    previous = e;
  }
  EXPECT_GT(previous, 0.95 * gpu.gemm_efficiency);
  EXPECT_EQ(gemm_time_s(gpu, 0, n, k), 0);
}

TEST(PlanKernelModel, StreamingRunsAtTheAchievedShareOfHbmBandwidth) {
  const GpuSpec gpu = h100();
  EXPECT_DOUBLE_EQ(stream_time_s(gpu, gpu.hbm_bytes_per_s), 1 / kHbmEfficiency);
  EXPECT_DOUBLE_EQ(stream_time_s(gpu, 2e9), 2 * stream_time_s(gpu, 1e9));
}

}  // namespace
}  // namespace sc::plan
