#include "kernels/rmsnorm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/kernel_test_util.h"

namespace sc {
namespace {

using kernel_test::random_vector;

TEST(KernelRmsnorm, ForwardMatchesDefinition) {
  ThreadPool pool(2);
  const size_t N = 9, C = 37;
  const float eps = 1e-5f;
  auto x = random_vector(N * C, 1);
  auto w = random_vector(C, 2);
  std::vector<float> out(N * C), rstd(N);
  rmsnorm_forward(pool, out.data(), rstd.data(), x.data(), w.data(), N, C, eps);
  std::vector<double> ref(N * C);
  for (size_t n = 0; n < N; ++n) {
    double ss = 0;
    for (size_t c = 0; c < C; ++c) ss += double(x[n * C + c]) * x[n * C + c];
    const double r = 1.0 / std::sqrt(ss / C + eps);
    EXPECT_NEAR(rstd[n], r, 1e-6 * r);
    for (size_t c = 0; c < C; ++c) ref[n * C + c] = x[n * C + c] * r * w[c];
  }
  // Tolerance: 1e-6·max(1, |ref|).
  EXPECT_LE(kernel_test::worst_relative_difference("rmsnorm forward", out.data(), ref.data(),
                                                   ref.size()),
            1e-6);
}

TEST(KernelRmsnorm, BackwardMatchesFiniteDifferences) {
  ThreadPool pool(2);
  const size_t N = 6, C = 8;
  const float eps = 1e-5f;
  auto x = random_vector(N * C, 3);
  auto w = random_vector(C, 4);
  for (auto& v : w) v += 1.0f;
  auto R = random_vector(N * C, 5);
  std::vector<float> out(N * C), rstd(N);
  auto loss = [&] {
    rmsnorm_forward(pool, out.data(), rstd.data(), x.data(), w.data(), N, C, eps);
    return kernel_test::weighted_sum(out, R);
  };
  loss();
  std::vector<float> dx(N * C, 0.0f), dw(C, 0.0f);
  std::vector<float> scratch(rmsnorm_backward_scratch_floats(N, C));
  rmsnorm_backward(pool, dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C,
                   scratch.data());
  kernel_test::expect_gradient_matches("rmsnorm dx", x.data(), dx.data(), dx.size(), loss);
  kernel_test::expect_gradient_matches("rmsnorm dweight", w.data(), dw.data(), dw.size(), loss);

  // Both gradients accumulate: a second call doubles them.
  std::vector<float> dx2 = dx, dw2 = dw;
  rmsnorm_backward(pool, dx2.data(), dw2.data(), R.data(), x.data(), w.data(), rstd.data(), N, C,
                   scratch.data());
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx2[i], 2 * dx[i], 1e-5f * (1 + std::fabs(dx[i])));
  for (size_t i = 0; i < dw.size(); ++i) EXPECT_NEAR(dw2[i], 2 * dw[i], 1e-5f * (1 + std::fabs(dw[i])));
}

TEST(KernelRmsnorm, BackwardIsIdenticalForOneAndTwoThreads) {
  const size_t N = 203, C = 70;
  auto x = random_vector(N * C, 6);
  auto w = random_vector(C, 7);
  auto dy = random_vector(N * C, 8);
  std::vector<float> results[2][2];
  for (size_t threads : {1, 2}) {
    ThreadPool pool(threads);
    std::vector<float> out(N * C), rstd(N), dx(N * C, 0.0f), dw(C, 0.0f);
    std::vector<float> scratch(rmsnorm_backward_scratch_floats(N, C));
    rmsnorm_forward(pool, out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-6f);
    rmsnorm_backward(pool, dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), N,
                     C, scratch.data());
    results[threads - 1][0] = dx;
    results[threads - 1][1] = dw;
  }
  EXPECT_EQ(results[0][0], results[1][0]);
  EXPECT_EQ(results[0][1], results[1][1]);
}

}  // namespace
}  // namespace sc
