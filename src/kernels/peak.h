// The measured fp32 matmul peak of this machine through our own matmul path
// (OpenBLAS sgemm split over the pool): the denominator of the trainer's MFU
// on a CPU, where no datasheet figure applies.
#pragma once

#include <string>

#include "core/thread_pool.h"

namespace sc {

// Best of a few runs of a square sgemm of side `n`, in GFLOP/s.
double measure_matmul_peak_gflops(ThreadPool& pool, size_t n = 2048, int repeats = 5);

// The peak to report MFU against: the best of this measurement and earlier
// ones on the same CPU model, thread count and BLAS kernels, kept in
// $XDG_CACHE_HOME/supercluster/matmul_peak.json (or ~/.cache/...). A machine
// shared with other work measures low now and then; the best run is the peak.
double matmul_peak_gflops(ThreadPool& pool);

}  // namespace sc
