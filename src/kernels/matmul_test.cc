#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <vector>

#include "kernels/kernel_test_util.h"

namespace sc {
namespace {

using kernel_test::random_vector;

// Tolerance vs a double reference: 5e-5·max(1, |ref|), for fp32 sums of up to
// 301 products of N(0, 1) values (observed: up to 1.5e-5).
constexpr double kMatmulTolerance = 5e-5;

struct Shape {
  size_t M, N, K;
};
// Odd sizes; the last ones are big enough for the pool to split rows of x,
// columns of out (small M) and columns of dx / dW (small M, small N).
const Shape kShapes[] = {{1, 1, 1},    {7, 13, 5},  {37, 19, 41},
                         {129, 67, 33}, {3, 301, 299}, {300, 5, 301}};

std::vector<double> reference_forward(const std::vector<float>& x, const std::vector<float>& W,
                                      const Shape& s) {
  std::vector<double> out(s.M * s.N, 0.0);
  for (size_t m = 0; m < s.M; ++m)
    for (size_t n = 0; n < s.N; ++n)
      for (size_t k = 0; k < s.K; ++k) out[m * s.N + n] += double(x[m * s.K + k]) * W[n * s.K + k];
  return out;
}

// Largest |a − ref| / max(1, |ref|).
double worst_difference(const std::vector<float>& a, const std::vector<double>& ref) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::fabs(a[i] - ref[i]) / std::max(1.0, std::fabs(ref[i])));
  }
  return worst;
}

TEST(KernelMatmul, ForwardMatchesNaiveLoops) {
  double worst = 0.0;
  for (size_t threads : {1, 2}) {
    ThreadPool pool(threads);
    for (const Shape& s : kShapes) {
      auto x = random_vector(s.M * s.K, 1);
      auto W = random_vector(s.N * s.K, 2);
      auto prior = random_vector(s.M * s.N, 3);
      auto ref = reference_forward(x, W, s);
      std::vector<float> out(s.M * s.N, 123.0f);
      matmul_forward(pool, out.data(), x.data(), W.data(), s.M, s.N, s.K, false);
      const std::string label = std::to_string(s.M) + "x" + std::to_string(s.N) + "x" +
                                std::to_string(s.K) + " threads " + std::to_string(threads);
      EXPECT_LE(worst_difference(out, ref), kMatmulTolerance) << label;
      worst = std::max(worst, worst_difference(out, ref));
      // accumulate = true adds onto what is there.
      std::vector<float> acc = prior;
      matmul_forward(pool, acc.data(), x.data(), W.data(), s.M, s.N, s.K, true);
      for (size_t i = 0; i < ref.size(); ++i) ref[i] += prior[i];
      EXPECT_LE(worst_difference(acc, ref), kMatmulTolerance) << label << " accumulate";
      worst = std::max(worst, worst_difference(acc, ref));
    }
  }
  std::printf("  matmul forward, %zu shapes x 1/2 threads x overwrite/accumulate: worst "
              "|a-ref|/max(1,|ref|) = %.3e (tolerance %.0e)\n",
              std::size(kShapes), worst, kMatmulTolerance);
}

TEST(KernelMatmul, BackwardMatchesNaiveLoopsAndAccumulates) {
  double worst_dx = 0.0, worst_dw = 0.0;
  for (size_t threads : {1, 2}) {
    ThreadPool pool(threads);
    for (const Shape& s : kShapes) {
      auto x = random_vector(s.M * s.K, 4);
      auto W = random_vector(s.N * s.K, 5);
      auto dy = random_vector(s.M * s.N, 6);
      auto dx = random_vector(s.M * s.K, 7);  // prior contents: must be added to
      auto dW = random_vector(s.N * s.K, 8);
      std::vector<double> dx_ref(dx.begin(), dx.end()), dW_ref(dW.begin(), dW.end());
      for (size_t m = 0; m < s.M; ++m)
        for (size_t n = 0; n < s.N; ++n)
          for (size_t k = 0; k < s.K; ++k) {
            dx_ref[m * s.K + k] += double(dy[m * s.N + n]) * W[n * s.K + k];
            dW_ref[n * s.K + k] += double(dy[m * s.N + n]) * x[m * s.K + k];
          }
      matmul_backward(pool, dx.data(), dW.data(), dy.data(), x.data(), W.data(), s.M, s.N, s.K);
      const std::string label = std::to_string(s.M) + "x" + std::to_string(s.N) + "x" +
                                std::to_string(s.K) + " threads " + std::to_string(threads);
      EXPECT_LE(worst_difference(dx, dx_ref), kMatmulTolerance) << "dx " << label;
      EXPECT_LE(worst_difference(dW, dW_ref), kMatmulTolerance) << "dW " << label;
      worst_dx = std::max(worst_dx, worst_difference(dx, dx_ref));
      worst_dw = std::max(worst_dw, worst_difference(dW, dW_ref));
      // Null gradients are skipped.
      matmul_backward(pool, nullptr, nullptr, dy.data(), x.data(), W.data(), s.M, s.N, s.K);
    }
  }
  std::printf("  matmul backward (onto random prior contents): worst dx %.3e, worst dW %.3e "
              "(tolerance %.0e)\n", worst_dx, worst_dw, kMatmulTolerance);
}

TEST(KernelMatmul, BackwardMatchesFiniteDifferences) {
  ThreadPool pool(2);
  const size_t M = 6, N = 5, K = 8;
  auto x = random_vector(M * K, 10);
  auto W = random_vector(N * K, 11);
  auto R = random_vector(M * N, 12);
  std::vector<float> out(M * N);
  auto loss = [&] {
    matmul_forward(pool, out.data(), x.data(), W.data(), M, N, K, false);
    return kernel_test::weighted_sum(out, R);
  };
  std::vector<float> dx(M * K, 0.0f), dW(N * K, 0.0f);
  matmul_backward(pool, dx.data(), dW.data(), R.data(), x.data(), W.data(), M, N, K);
  kernel_test::expect_gradient_matches("matmul dx", x.data(), dx.data(), dx.size(), loss);
  kernel_test::expect_gradient_matches("matmul dW", W.data(), dW.data(), dW.size(), loss);
}

TEST(KernelMatmul, DescribesBlas) {
  blas_init_single_threaded();
  const std::string description = blas_description();
  std::printf("  %s\n", description.c_str());
  EXPECT_NE(description.find("OpenBLAS"), std::string::npos);
  EXPECT_NE(description.find("1 thread"), std::string::npos);
}

}  // namespace
}  // namespace sc
