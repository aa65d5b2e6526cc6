// Helpers for the kernels' tests: seeded random arrays, naive references in
// double, and a central finite-difference gradient check that prints its
// worst difference (llm.c style). Test-only; nothing in the library includes it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace sc::kernel_test {

inline std::vector<float> random_vector(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// Σ out[i]·weights[i] in double: the scalar loss whose gradient is checked.
inline double weighted_sum(const std::vector<float>& out, const std::vector<float>& weights) {
  double s = 0.0;
  for (size_t i = 0; i < out.size(); ++i) s += double(out[i]) * double(weights[i]);
  return s;
}

// Finite differences in fp32 with eps = 1e-3 on O(1) values. Tolerance, for
// every element: |analytic − numeric| <= kGradTolerance · max(1, |numeric|).
inline constexpr float kFiniteDifferenceEps = 1e-3f;
inline constexpr double kGradTolerance = 1e-2;

// Checks `analytic` (the kernel's gradient of loss() w.r.t. param[0..n)) with
// central differences of loss(), perturbing param in place. Prints the worst
// difference, fails the test past the tolerance, and also fails if every
// numeric gradient is ~0 (a check that cannot fail is no check).
template <class LossFn>
void expect_gradient_matches(const std::string& name, float* param, const float* analytic,
                             size_t n, LossFn&& loss) {
  double worst_excess = -1e30, worst_diff = 0.0, worst_a = 0.0, worst_n = 0.0;
  double max_abs_numeric = 0.0;
  size_t worst_i = 0;
  for (size_t i = 0; i < n; ++i) {
    const float saved = param[i];
    param[i] = saved + kFiniteDifferenceEps;
    const double plus = loss();
    param[i] = saved - kFiniteDifferenceEps;
    const double minus = loss();
    param[i] = saved;
    const double numeric = (plus - minus) / (2.0 * double(kFiniteDifferenceEps));
    const double diff = std::fabs(double(analytic[i]) - numeric);
    const double excess = diff / std::max(1.0, std::fabs(numeric));
    max_abs_numeric = std::max(max_abs_numeric, std::fabs(numeric));
    if (excess > worst_excess) {
      worst_excess = excess;
      worst_diff = diff;
      worst_a = analytic[i];
      worst_n = numeric;
      worst_i = i;
    }
  }
  std::printf("  %-28s n=%-5zu worst |a-n| = %.3e at %zu (analytic %.6f, numeric %.6f), "
              "max |n| = %.3f, tolerance %.0e*max(1,|n|)\n",
              name.c_str(), n, worst_diff, worst_i, worst_a, worst_n, max_abs_numeric,
              kGradTolerance);
  EXPECT_LE(worst_excess, kGradTolerance) << name << " gradient mismatch at " << worst_i;
  EXPECT_GT(max_abs_numeric, 0.05) << name << ": gradients too small to test anything";
}

// Largest |a − b| / max(1, |b|) over two arrays, printed with a label.
inline double worst_relative_difference(const std::string& name, const float* a,
                                        const double* reference, size_t n) {
  double worst = 0.0;
  for (size_t i = 0; i < n; ++i) {
    worst = std::max(worst, std::fabs(double(a[i]) - reference[i]) /
                                std::max(1.0, std::fabs(reference[i])));
  }
  std::printf("  %-28s n=%-6zu worst |a-ref|/max(1,|ref|) = %.3e\n", name.c_str(), n, worst);
  return worst;
}

}  // namespace sc::kernel_test
