#include "plan/kernel_model.h"

#include <algorithm>
#include <cmath>

namespace sc::plan {

double gemm_time_s(const GpuSpec& gpu, double m, double n, double k) {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  const double flops = 2 * m * n * k;
  const double tiles = std::ceil(m / 128) * std::ceil(n / 256);
  const double waves = std::ceil(tiles / static_cast<double>(gpu.sm_count));
  const double wave_efficiency = tiles / (waves * static_cast<double>(gpu.sm_count));
  const double compute_s = flops / (gpu.bf16_flops * gpu.gemm_efficiency * wave_efficiency);
  const double bytes = 2 * (m * k + k * n + m * n);
  return std::max(compute_s, stream_time_s(gpu, bytes)) + kKernelOverheadS;
}

double gemm_efficiency(const GpuSpec& gpu, double m, double n, double k) {
  const double t = gemm_time_s(gpu, m, n, k);
  return t > 0 ? 2 * m * n * k / (t * gpu.bf16_flops) : 0;
}

double stream_time_s(const GpuSpec& gpu, double bytes) { return bytes / (gpu.hbm_bytes_per_s * kHbmEfficiency); }

}  // namespace sc::plan
