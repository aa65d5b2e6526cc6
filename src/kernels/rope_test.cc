#include "kernels/rope.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernel_test_util.h"

namespace sc {
namespace {

using kernel_test::random_vector;

TEST(KernelRope, TablesMatchFormula) {
  const size_t T = 300, D = 16;
  std::vector<float> cos_t(T * D / 2), sin_t(T * D / 2);
  rope_tables_fill(cos_t.data(), sin_t.data(), T, D, 10000.0);
  for (size_t t = 0; t < T; ++t) {
    for (size_t i = 0; i < D / 2; ++i) {
      const double angle = t * std::pow(10000.0, -2.0 * i / D);
      EXPECT_NEAR(cos_t[t * D / 2 + i], std::cos(angle), 1e-7);
      EXPECT_NEAR(sin_t[t * D / 2 + i], std::sin(angle), 1e-7);
    }
  }
  // first_position offsets the table: row 0 of the offset table is row 17.
  std::vector<float> cos_o(D / 2), sin_o(D / 2);
  rope_tables_fill(cos_o.data(), sin_o.data(), 1, D, 10000.0, 17);
  for (size_t i = 0; i < D / 2; ++i) EXPECT_EQ(cos_o[i], cos_t[17 * D / 2 + i]);
}

TEST(KernelRope, ForwardMatchesRotateHalfDefinition) {
  ThreadPool pool(2);
  const size_t B = 2, T = 5, H = 3, D = 8, N = B * T;
  std::vector<float> cos_t(T * D / 2), sin_t(T * D / 2);
  rope_tables_fill(cos_t.data(), sin_t.data(), T, D, 10000.0);
  auto x = random_vector(N * H * D, 1);
  auto y = x;
  rope_forward(pool, y.data(), cos_t.data(), sin_t.data(), N, T, H, D);
  std::vector<double> ref(N * H * D);
  for (size_t n = 0; n < N; ++n) {
    const double p = double(n % T);
    for (size_t h = 0; h < H; ++h) {
      const float* xh = x.data() + (n * H + h) * D;
      double* rh = ref.data() + (n * H + h) * D;
      for (size_t i = 0; i < D / 2; ++i) {
        const double angle = p * std::pow(10000.0, -2.0 * i / D);
        rh[i] = xh[i] * std::cos(angle) - xh[i + D / 2] * std::sin(angle);
        rh[i + D / 2] = xh[i + D / 2] * std::cos(angle) + xh[i] * std::sin(angle);
      }
    }
  }
  // Tolerance: 1e-6·max(1, |ref|).
  EXPECT_LE(kernel_test::worst_relative_difference("rope forward", y.data(), ref.data(), ref.size()),
            1e-6);
  // Position 0 is the identity.
  for (size_t c = 0; c < H * D; ++c) EXPECT_EQ(y[c], x[c]);
}

TEST(KernelRope, BackwardMatchesFiniteDifferences) {
  ThreadPool pool(2);
  const size_t B = 2, T = 5, H = 2, D = 8, N = B * T;
  std::vector<float> cos_t(T * D / 2), sin_t(T * D / 2);
  rope_tables_fill(cos_t.data(), sin_t.data(), T, D, 100.0);
  auto x = random_vector(N * H * D, 2);
  auto R = random_vector(N * H * D, 3);
  std::vector<float> y(x.size());
  auto loss = [&] {
    y = x;
    rope_forward(pool, y.data(), cos_t.data(), sin_t.data(), N, T, H, D);
    return kernel_test::weighted_sum(y, R);
  };
  std::vector<float> dx = R;
  rope_backward(pool, dx.data(), cos_t.data(), sin_t.data(), N, T, H, D);
  kernel_test::expect_gradient_matches("rope dx", x.data(), dx.data(), dx.size(), loss);
}

// rope_forward_at shares rope_forward's row math: positions n mod T give
// the same bits, and any position p equals the one-row table offset by p.
TEST(KernelRope, ForwardAtPositionsEqualsForward) {
  ThreadPool pool(2);
  const size_t B = 3, T = 40, H = 3, D = 16, N = B * T;
  std::vector<float> cos_t(T * D / 2), sin_t(T * D / 2);
  rope_tables_fill(cos_t.data(), sin_t.data(), T, D, 10000.0);
  const auto x = random_vector(N * H * D, 4);
  auto grid = x, at = x;
  rope_forward(pool, grid.data(), cos_t.data(), sin_t.data(), N, T, H, D);
  std::vector<size_t> positions(N);
  for (size_t n = 0; n < N; ++n) positions[n] = n % T;
  rope_forward_at(pool, at.data(), cos_t.data(), sin_t.data(), positions.data(), N, H, D);
  EXPECT_EQ(at, grid);

  for (size_t n = 0; n < N; ++n) positions[n] = (n * 7 + 3) % T;
  at = x;
  rope_forward_at(pool, at.data(), cos_t.data(), sin_t.data(), positions.data(), N, H, D);
  for (size_t n = 0; n < N; ++n) {
    std::vector<float> row(x.begin() + n * H * D, x.begin() + (n + 1) * H * D);
    const size_t p = positions[n];
    rope_forward(pool, row.data(), cos_t.data() + p * D / 2, sin_t.data() + p * D / 2, 1, 1, H, D);
    ASSERT_TRUE(std::equal(row.begin(), row.end(), at.begin() + n * H * D)) << "row " << n;
  }
}

}  // namespace
}  // namespace sc
