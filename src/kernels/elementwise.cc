#include "kernels/elementwise.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

namespace sc {
namespace {
constexpr size_t kSumChunk = kSumSquaresChunk;
}  // namespace

void fill(ThreadPool& pool, float* x, float value, size_t count) {
  parallel_for_elements(pool, count, [&](size_t b, size_t e) { std::fill(x + b, x + e, value); });
}

void copy(ThreadPool& pool, float* dst, const float* src, size_t count) {
  parallel_for_elements(pool, count, [&](size_t b, size_t e) {
    std::memcpy(dst + b, src + b, (e - b) * sizeof(float));
  });
}

void add_inplace(ThreadPool& pool, float* y, const float* x, size_t count) {
  parallel_for_elements(pool, count, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] += x[i];
  });
}

void add(ThreadPool& pool, float* out, const float* a, const float* b, size_t count) {
  parallel_for_elements(pool, count, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) out[i] = a[i] + b[i];
  });
}

void scale_inplace(ThreadPool& pool, float* x, float scale, size_t count) {
  parallel_for_elements(pool, count, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) x[i] *= scale;
  });
}

void axpy(ThreadPool& pool, float* y, float alpha, const float* x, size_t count) {
  parallel_for_elements(pool, count, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] += alpha * x[i];
  });
}

size_t sum_squares_scratch_doubles(size_t count) { return (count + kSumChunk - 1) / kSumChunk; }

void sum_squares_per_chunk(ThreadPool& pool, const float* x, size_t count, double* scratch) {
  const size_t chunks = sum_squares_scratch_doubles(count);
  auto run = [&](size_t chunk_begin, size_t chunk_end, size_t) {
    for (size_t c = chunk_begin; c < chunk_end; ++c) {
      const float* p = x + c * kSumChunk;
      const size_t n = std::min(kSumChunk, count - c * kSumChunk);
      // 16 double lanes, then the lanes in order.
      double lanes[16] = {};
      size_t i = 0;
      for (; i + 16 <= n; i += 16) {
        for (size_t l = 0; l < 16; ++l) lanes[l] += double(p[i + l]) * double(p[i + l]);
      }
      double s = 0.0;
      for (size_t l = 0; l < 16; ++l) s += lanes[l];
      for (; i < n; ++i) s += double(p[i]) * double(p[i]);
      scratch[c] = s;
    }
  };
  if (count < kMinParallelElements) {
    run(0, chunks, 0);
  } else {
    pool.parallel_for(chunks, run);
  }
}

double sum_squares(ThreadPool& pool, const float* x, size_t count, double* scratch) {
  sum_squares_per_chunk(pool, x, count, scratch);
  const size_t chunks = sum_squares_scratch_doubles(count);
  double total = 0.0;
  for (size_t c = 0; c < chunks; ++c) total += scratch[c];
  return total;
}

bool all_finite(ThreadPool& pool, const float* x, size_t count) {
  std::atomic<bool> finite{true};
  parallel_for_elements(pool, count, [&](size_t b, size_t e) {
    // Exponent bits all ones: NaN or inf. Branch-free so the loop vectorizes.
    uint32_t bad = 0;
    for (size_t i = b; i < e; ++i) {
      uint32_t bits;
      std::memcpy(&bits, x + i, sizeof(bits));
      bad |= ((bits & 0x7f800000u) == 0x7f800000u) ? 1u : 0u;
    }
    if (bad) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

}  // namespace sc
