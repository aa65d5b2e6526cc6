// Linear layers y = x·Wᵀ with Hugging Face weights W [out, in], on CBLAS.
// OpenBLAS runs single-threaded inside our ThreadPool: each pool thread calls
// sgemm on its own slice (rows of the output, or of dW), so two thread pools
// never fight over two cores.
#pragma once

#include <cstddef>
#include <string>

#include "core/thread_pool.h"

namespace sc {

// Makes OpenBLAS single-threaded (openblas_set_num_threads(1)). Idempotent;
// matmul_forward / matmul_backward call it on first use, so calling it is
// only needed before using CBLAS directly.
void blas_init_single_threaded();

// What BLAS runs on, e.g. "OpenBLAS 0.3.21 ... DYNAMIC_ARCH ... (core SkylakeX, 1 thread)",
// for the start-up log line that says which kernels the CPU got. Calls
// blas_init_single_threaded() first.
std::string blas_description();

// out[M, N] = x[M, K] · W[N, K]ᵀ        (accumulate = false: out is overwritten)
// out[M, N] += x[M, K] · W[N, K]ᵀ       (accumulate = true)
// Rows are split over the pool (columns when M is too small to split).
void matmul_forward(ThreadPool& pool, float* out, const float* x, const float* W, size_t M,
                    size_t N, size_t K, bool accumulate);

// Backward of out = x·Wᵀ, both gradients ACCUMULATED:
//   dx[M, K] += dy[M, N] · W[N, K]      (skipped when dx is null)
//   dW[N, K] += dy[M, N]ᵀ · x[M, K]     (skipped when dW is null)
// dx is split over rows M, dW over rows N: every thread owns disjoint output
// slices, so there are no races and no reduction.
void matmul_backward(ThreadPool& pool, float* dx, float* dW, const float* dy, const float* x,
                     const float* W, size_t M, size_t N, size_t K);

}  // namespace sc
