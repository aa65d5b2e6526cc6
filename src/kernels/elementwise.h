// Small element-wise kernels over flat float arrays (residual adds, scaling,
// fills, norms for clipping and NaN guards), and the splitting helper the
// other element-wise kernels use.
#pragma once

#include <cstddef>

#include "core/thread_pool.h"

namespace sc {

// Arrays shorter than this run on the calling thread: waking the pool costs
// more than the loop.
inline constexpr size_t kMinParallelElements = 1u << 15;

// fn(begin, end) over contiguous parts of [0, count), on the pool when count
// is large. Parts start on multiples of 16 floats (one cache line).
template <class Fn>
void parallel_for_elements(ThreadPool& pool, size_t count, Fn&& fn) {
  if (count < kMinParallelElements || pool.num_threads() == 1) {
    fn(size_t{0}, count);
    return;
  }
  constexpr size_t kGrain = 16;
  const size_t units = (count + kGrain - 1) / kGrain;
  pool.parallel_for(units, [&](size_t begin, size_t end, size_t) {
    const size_t e = end * kGrain < count ? end * kGrain : count;
    fn(begin * kGrain, e);
  });
}

// x[i] = value
void fill(ThreadPool& pool, float* x, float value, size_t count);
// dst[i] = src[i]
void copy(ThreadPool& pool, float* dst, const float* src, size_t count);
// y[i] += x[i]   (residual add; gradient fan-in)
void add_inplace(ThreadPool& pool, float* y, const float* x, size_t count);
// out[i] = a[i] + b[i]   (out may equal a or b)
void add(ThreadPool& pool, float* out, const float* a, const float* b, size_t count);
// x[i] *= scale
void scale_inplace(ThreadPool& pool, float* x, float scale, size_t count);
// y[i] += alpha · x[i]
void axpy(ThreadPool& pool, float* y, float alpha, const float* x, size_t count);

// sum_squares sums chunks of this many floats, then the chunk sums in order.
// Fixed, so the order never depends on threads; a data-parallel gradient norm
// gets the same bits by cutting shards on chunk boundaries and summing every
// rank's chunk sums in buffer order.
inline constexpr size_t kSumSquaresChunk = 1u << 14;
// Doubles of scratch sum_squares needs: one per fixed chunk of the array.
size_t sum_squares_scratch_doubles(size_t count);
// Σ x[i]² of each chunk of x into chunk_sums[sum_squares_scratch_doubles(count)].
void sum_squares_per_chunk(ThreadPool& pool, const float* x, size_t count, double* chunk_sums);
// Σ x[i]² in double (gradient-norm clipping). Sums fixed chunks, then the
// chunk sums in order: the result is identical for any pool size.
double sum_squares(ThreadPool& pool, const float* x, size_t count, double* scratch);

// True when no element is NaN or ±inf.
bool all_finite(ThreadPool& pool, const float* x, size_t count);

}  // namespace sc
