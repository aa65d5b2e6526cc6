// Time of one kernel on one GPU: GEMMs by roofline with wave quantization,
// bandwidth-bound streaming kernels. The efficiency curve this gives (GEMM
// efficiency versus size) is what `plan --calibrate` prints beside this
// machine's measurements; docs/plan.md gives the sources of its constants.
#pragma once

#include "plan/hardware.h"

namespace sc::plan {

// Launch gap and tail of one kernel on the GPU.
inline constexpr double kKernelOverheadS = 3e-6;
// Achieved / datasheet HBM bandwidth of a streaming kernel.
inline constexpr double kHbmEfficiency = 0.8;

// C[m, n] = A[m, k] B[k, n] in bf16: max(compute at the achievable ceiling
// times the wave efficiency of 128 x 256 output tiles over the SMs, HBM
// traffic) plus the kernel overhead.
double gemm_time_s(const GpuSpec& gpu, double m, double n, double k);
// 2mnk / (gemm_time_s x dense peak).
double gemm_efficiency(const GpuSpec& gpu, double m, double n, double k);
double stream_time_s(const GpuSpec& gpu, double bytes);

}  // namespace sc::plan
