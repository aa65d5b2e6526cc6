#include "kernels/rope.h"

#include <cmath>

#include "kernels/device_math.h"

namespace sc {
namespace {

template <bool kInverse>
void rope_apply(ThreadPool& pool, float* x, const float* cos_table, const float* sin_table,
                size_t N, size_t T, size_t H, size_t D) {
  const size_t half = D / 2;
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    for (size_t n = begin; n < end; ++n) {
      const size_t t = n % T;
      const float* cr = cos_table + t * half;
      const float* sr = sin_table + t * half;
      for (size_t h = 0; h < H; ++h) {
        float* lo = x + n * H * D + h * D;
        float* hi = lo + half;
        for (size_t i = 0; i < half; ++i) {
          if constexpr (kInverse) {
            rope_rotate_inverse(lo[i], hi[i], cr[i], sr[i]);
          } else {
            rope_rotate(lo[i], hi[i], cr[i], sr[i]);
          }
        }
      }
    }
  });
}

}  // namespace

void rope_tables_fill(float* cos_table, float* sin_table, size_t T, size_t D, double theta,
                      size_t first_position) {
  const size_t half = D / 2;
  for (size_t i = 0; i < half; ++i) {
    const double inv_freq = rope_inv_freq(static_cast<int>(i), static_cast<int>(D), theta);
    for (size_t t = 0; t < T; ++t) {
      const double angle = static_cast<double>(first_position + t) * inv_freq;
      cos_table[t * half + i] = static_cast<float>(std::cos(angle));
      sin_table[t * half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

void rope_forward(ThreadPool& pool, float* x, const float* cos_table, const float* sin_table,
                  size_t N, size_t T, size_t H, size_t D) {
  rope_apply<false>(pool, x, cos_table, sin_table, N, T, H, D);
}

void rope_backward(ThreadPool& pool, float* dx, const float* cos_table, const float* sin_table,
                   size_t N, size_t T, size_t H, size_t D) {
  rope_apply<true>(pool, dx, cos_table, sin_table, N, T, H, D);
}

}  // namespace sc
