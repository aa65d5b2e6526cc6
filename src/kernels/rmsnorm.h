// RMSNorm over rows: out[n, c] = x[n, c] · rstd[n] · weight[c],
// rstd[n] = 1 / sqrt(mean_c(x[n, c]²) + eps).
#pragma once

#include <cstddef>

#include "core/thread_pool.h"

namespace sc {

// Writes out [N, C] and the per-row rstd [N] that the backward needs.
// out may equal x (in place).
void rmsnorm_forward(ThreadPool& pool, float* out, float* rstd, const float* x,
                     const float* weight, size_t N, size_t C, float eps);

// Floats of scratch rmsnorm_backward needs: one partial dweight row per fixed
// block of rows, min(N, 64) · C.
size_t rmsnorm_backward_scratch_floats(size_t N, size_t C);

// Both gradients ACCUMULATED:
//   dx[N, C]   += ∂L/∂x
//   dweight[C] += Σ_n dout[n, c] · x[n, c] · rstd[n]
// dweight sums partials of fixed row blocks (independent of the thread count)
// in block order, so dweight is bit-identical for any pool size and timing.
// dx must not alias dout or x.
void rmsnorm_backward(ThreadPool& pool, float* dx, float* dweight, const float* dout,
                      const float* x, const float* weight, const float* rstd, size_t N,
                      size_t C, float* scratch);

}  // namespace sc
