#include "kernels/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/kernel_test_util.h"

namespace sc {
namespace {

using kernel_test::random_vector;

TEST(KernelElementwise, BasicOps) {
  ThreadPool pool(2);
  for (size_t n : {size_t{7}, size_t{100003}}) {  // inline and pooled paths
    auto a = random_vector(n, 1);
    auto b = random_vector(n, 2);
    std::vector<float> y = a, out(n);
    add_inplace(pool, y.data(), b.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], a[i] + b[i]);
    add(pool, out.data(), a.data(), b.data(), n);
    EXPECT_EQ(out, y);
    y = a;
    axpy(pool, y.data(), -0.5f, b.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], a[i] + -0.5f * b[i]);
    scale_inplace(pool, y.data(), 2.0f, n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], 2.0f * (a[i] + -0.5f * b[i]));
    fill(pool, y.data(), 3.0f, n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], 3.0f);
    copy(pool, y.data(), a.data(), n);
    EXPECT_EQ(y, a);
  }
}

TEST(KernelElementwise, SumSquaresIsExactEnoughAndThreadIndependent) {
  const size_t n = 1000003;
  auto x = random_vector(n, 3);
  double ref = 0.0;
  for (float v : x) ref += double(v) * v;
  std::vector<double> scratch(sum_squares_scratch_doubles(n));
  double results[2];
  for (size_t threads : {1, 2}) {
    ThreadPool pool(threads);
    results[threads - 1] = sum_squares(pool, x.data(), n, scratch.data());
  }
  // Tolerance: 1e-12 relative (double accumulation of fp32 squares).
  std::printf("  sum_squares %.12f vs reference %.12f\n", results[0], ref);
  EXPECT_NEAR(results[0], ref, 1e-12 * ref);
  EXPECT_EQ(results[0], results[1]);
}

TEST(KernelElementwise, AllFinite) {
  ThreadPool pool(2);
  std::vector<float> x(100000, 1.0f);
  EXPECT_TRUE(all_finite(pool, x.data(), x.size()));
  x[77777] = NAN;
  EXPECT_FALSE(all_finite(pool, x.data(), x.size()));
  x[77777] = -INFINITY;
  EXPECT_FALSE(all_finite(pool, x.data(), x.size()));
  x[77777] = 3.4e38f;
  EXPECT_TRUE(all_finite(pool, x.data(), x.size()));
}

}  // namespace
}  // namespace sc
