#include "kernels/device_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

namespace sc {
namespace {

// Walks [lo, hi] in `steps` even steps.
template <class Fn>
void for_grid(double lo, double hi, int steps, Fn&& fn) {
  for (int i = 0; i <= steps; ++i) fn(static_cast<float>(lo + (hi - lo) * i / steps));
}

double gelu_tanh_reference(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
double silu_reference(double x) { return x / (1.0 + std::exp(-x)); }

// Central difference in double of a double reference.
template <class Fn>
double derivative(Fn&& f, double x) {
  const double h = 1e-5;
  return (f(x + h) - f(x - h)) / (2 * h);
}

TEST(KernelDeviceMath, ExpFastMatchesStdExp) {
  // Tolerance: 2e-7 relative (~2 ulp) over the whole range it promises.
  double worst = 0.0;
  for_grid(kExpFastMin, kExpFastMax, 200000, [&](float x) {
    const double ref = std::exp(double(x));
    worst = std::max(worst, std::fabs(exp_fast(x) - ref) / ref);
  });
  std::printf("  exp_fast worst relative error %.3e\n", worst);
  EXPECT_LE(worst, 2e-7);
  EXPECT_EQ(exp_fast(-88.0f), 0.0f);
  EXPECT_EQ(exp_fast(-INFINITY), 0.0f);
  EXPECT_EQ(exp_fast(0.0f), 1.0f);
  EXPECT_TRUE(std::isfinite(exp_fast(1000.0f)));
  EXPECT_TRUE(std::isnan(exp_fast(NAN)));
}

TEST(KernelDeviceMath, TanhFastMatchesStdTanh) {
  // Tolerance: 2e-7 absolute everywhere, 5e-7 relative near 0 (|x| < 1).
  double worst_abs = 0.0, worst_rel_small = 0.0;
  for_grid(-30.0, 30.0, 600001, [&](float x) {
    const double ref = std::tanh(double(x));
    const double err = std::fabs(tanh_fast(x) - ref);
    worst_abs = std::max(worst_abs, err);
    if (std::fabs(x) < 1.0f && x != 0.0f) worst_rel_small = std::max(worst_rel_small, err / std::fabs(ref));
  });
  for (float x : {1e-3f, -1e-5f, 3e-8f}) {
    worst_rel_small = std::max(worst_rel_small, std::fabs(tanh_fast(x) - std::tanh(double(x))) /
                                                    std::fabs(std::tanh(double(x))));
  }
  std::printf("  tanh_fast worst abs error %.3e, worst relative error for |x|<1 %.3e\n",
              worst_abs, worst_rel_small);
  EXPECT_LE(worst_abs, 2e-7);
  EXPECT_LE(worst_rel_small, 5e-7);
  EXPECT_EQ(tanh_fast(0.0f), 0.0f);
  EXPECT_EQ(tanh_fast(100.0f), 1.0f);
  EXPECT_EQ(tanh_fast(-100.0f), -1.0f);
}

TEST(KernelDeviceMath, ActivationsAndDerivativesMatchReferences) {
  // Tolerance: 1e-6·max(1, |ref|) for values, 1e-5·max(1, |ref|) for derivatives
  // (reference derivative by central differences in double).
  double worst_value = 0.0, worst_grad = 0.0;
  auto check = [&](double got, double ref, double* worst) {
    *worst = std::max(*worst, std::fabs(got - ref) / std::max(1.0, std::fabs(ref)));
  };
  for_grid(-12.0, 12.0, 24001, [&](float x) {
    check(gelu_tanh(x), gelu_tanh_reference(x), &worst_value);
    check(silu(x), silu_reference(x), &worst_value);
    check(sigmoid(x), 1.0 / (1.0 + std::exp(-double(x))), &worst_value);
    check(gelu_tanh_grad(x), derivative(gelu_tanh_reference, x), &worst_grad);
    check(silu_grad(x), derivative(silu_reference, x), &worst_grad);
  });
  std::printf("  activations worst value error %.3e, worst derivative error %.3e\n", worst_value,
              worst_grad);
  EXPECT_LE(worst_value, 1e-6);
  EXPECT_LE(worst_grad, 1e-5);
  // Signs and known points, so a flipped formula cannot hide in a tolerance.
  EXPECT_NEAR(gelu_tanh(1.0f), 0.8411920071, 1e-6);
  EXPECT_NEAR(silu(1.0f), 0.7310585786, 1e-6);
  EXPECT_NEAR(gelu_tanh_grad(0.0f), 0.5, 1e-7);
  EXPECT_NEAR(silu_grad(0.0f), 0.5, 1e-7);
}

TEST(KernelDeviceMath, SoftcapMatchesDefinition) {
  // Tolerance: 1e-6·max(1, |ref|).
  double worst = 0.0;
  for (float cap : {1.5f, 30.0f, 50.0f}) {
    for_grid(-4.0 * cap, 4.0 * cap, 8001, [&](float s) {
      const double ref = cap * std::tanh(double(s) / cap);
      const double ref_grad = 1.0 - std::pow(std::tanh(double(s) / cap), 2.0);
      worst = std::max(worst, std::fabs(softcap(s, cap) - ref) / std::max(1.0, std::fabs(ref)));
      worst = std::max(worst, std::fabs(softcap_grad(s, cap) - ref_grad));
    });
  }
  std::printf("  softcap worst error %.3e\n", worst);
  EXPECT_LE(worst, 1e-6);
  EXPECT_NEAR(softcap_grad_from_output(0.0f, 30.0f), 1.0f, 1e-7);
}

TEST(KernelDeviceMath, RopeFrequenciesAndRotation) {
  const int D = 64;
  for (int i = 0; i < D / 2; ++i) {
    EXPECT_DOUBLE_EQ(rope_inv_freq(i, D, 10000.0), std::pow(10000.0, -2.0 * i / D));
  }
  EXPECT_DOUBLE_EQ(rope_inv_freq(0, D, 500000.0), 1.0);
  // Rotating by θ then −θ is the identity; rotating (1, 0) by θ gives (cos, sin).
  float lo = 1.0f, hi = 0.0f;
  const float c = std::cos(0.3f), s = std::sin(0.3f);
  rope_rotate(lo, hi, c, s);
  EXPECT_FLOAT_EQ(lo, c);
  EXPECT_FLOAT_EQ(hi, s);
  rope_rotate_inverse(lo, hi, c, s);
  EXPECT_NEAR(lo, 1.0f, 3e-7);
  EXPECT_NEAR(hi, 0.0f, 3e-7);
}

TEST(KernelDeviceMath, RmsnormRstd) {
  EXPECT_FLOAT_EQ(rmsnorm_rstd(4.0f * 4, 4, 0.0f), 0.5f);
  EXPECT_NEAR(rmsnorm_rstd(0.0f, 8, 1e-6f), 1000.0f, 1e-2);
}

}  // namespace
}  // namespace sc
