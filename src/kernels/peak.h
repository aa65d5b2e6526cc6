// The measured fp32 matmul peak of this machine through our own matmul path
// (OpenBLAS sgemm split over the pool): the denominator of the trainer's MFU
// on a CPU, where no datasheet figure applies.
#pragma once

#include "core/thread_pool.h"

namespace sc {

// Best of a few runs of a square sgemm of side `n` (default sized to take
// about a tenth of a second on these cores), in GFLOP/s.
double measure_matmul_peak_gflops(ThreadPool& pool, size_t n = 2048, int repeats = 5);

}  // namespace sc
