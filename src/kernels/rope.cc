#include "kernels/rope.h"

#include <cmath>

#include "kernels/device_math.h"

namespace sc {
namespace {

// One row of H heads, rotated by table row cr, sr.
template <bool kInverse>
inline void rope_row(float* x, const float* cr, const float* sr, size_t H, size_t D) {
  const size_t half = D / 2;
  for (size_t h = 0; h < H; ++h) {
    float* lo = x + h * D;
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

template <bool kInverse>
void rope_apply(ThreadPool& pool, float* x, const float* cos_table, const float* sin_table,
                size_t N, size_t T, size_t H, size_t D) {
  const size_t half = D / 2;
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    for (size_t n = begin; n < end; ++n) {
      const size_t t = n % T;
      rope_row<kInverse>(x + n * H * D, cos_table + t * half, sin_table + t * half, H, D);
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

void rope_forward_at(ThreadPool& pool, float* x, const float* cos_table, const float* sin_table,
                     const size_t* positions, size_t N, size_t H, size_t D) {
  const size_t half = D / 2;
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    for (size_t n = begin; n < end; ++n) {
      const size_t t = positions[n];
      rope_row<false>(x + n * H * D, cos_table + t * half, sin_table + t * half, H, D);
    }
  });
}

}  // namespace sc
