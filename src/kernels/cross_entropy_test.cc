#include "kernels/cross_entropy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/kernel_test_util.h"

namespace sc {
namespace {

using kernel_test::random_vector;

const std::vector<uint32_t> kTargets = {3, kIgnoreIndex, 10, 0, kIgnoreIndex, 7};
constexpr size_t kN = 6, kV = 11;
constexpr float kScale = 0.5773502691896257f;

TEST(KernelCrossEntropy, ForwardMatchesLogSoftmaxAndSkipsIgnored) {
  ThreadPool pool(2);
  auto logits = random_vector(kN * kV, 1, 3.0f);
  std::vector<float> row_loss(kN), row_lse(kN);
  auto sums = cross_entropy_forward(pool, logits.data(), kTargets.data(), kN, kV, kScale,
                                    row_loss.data(), row_lse.data());
  ASSERT_TRUE(sums.ok());
  EXPECT_EQ(sums->count, 4u);
  double ref_sum = 0.0;
  for (size_t n = 0; n < kN; ++n) {
    double m = -1e30, s = 0.0;
    for (size_t v = 0; v < kV; ++v) m = std::max(m, double(kScale) * logits[n * kV + v]);
    for (size_t v = 0; v < kV; ++v) s += std::exp(double(kScale) * logits[n * kV + v] - m);
    const double lse = m + std::log(s);
    EXPECT_NEAR(row_lse[n], lse, 1e-6 * std::max(1.0, std::fabs(lse)));
    if (kTargets[n] == kIgnoreIndex) {
      EXPECT_EQ(row_loss[n], 0.0f);
      continue;
    }
    const double loss = lse - double(kScale) * logits[n * kV + kTargets[n]];
    EXPECT_NEAR(row_loss[n], loss, 1e-6 * std::max(1.0, loss));
    ref_sum += loss;
  }
  // Tolerance: 1e-6 relative on the sum.
  std::printf("  loss sum %.9f vs reference %.9f\n", sums->loss_sum, ref_sum);
  EXPECT_NEAR(sums->loss_sum, ref_sum, 1e-6 * ref_sum);

  // Ignored rows contribute nothing: changing their logits changes no sum.
  auto changed = logits;
  for (size_t v = 0; v < kV; ++v) changed[1 * kV + v] += 100.0f * float(v);
  auto sums2 = cross_entropy_forward(pool, changed.data(), kTargets.data(), kN, kV, kScale,
                                     row_loss.data(), row_lse.data());
  ASSERT_TRUE(sums2.ok());
  EXPECT_EQ(sums2->loss_sum, sums->loss_sum);
  EXPECT_EQ(sums2->count, sums->count);
}

TEST(KernelCrossEntropy, RejectsTargetOutsideVocabulary) {
  ThreadPool pool(1);
  std::vector<float> logits(2 * kV, 0.0f), row_loss(2), row_lse(2);
  const std::vector<uint32_t> targets = {kIgnoreIndex, uint32_t(kV)};
  auto sums = cross_entropy_forward(pool, logits.data(), targets.data(), 2, kV, 1.0f,
                                    row_loss.data(), row_lse.data());
  ASSERT_FALSE(sums.ok());
  EXPECT_NE(sums.status().message().find("position 1"), std::string::npos);
}

TEST(KernelCrossEntropy, BackwardMatchesFiniteDifferences) {
  ThreadPool pool(2);
  auto logits = random_vector(kN * kV, 2, 3.0f);
  std::vector<float> row_loss(kN), row_lse(kN);
  const float dloss = 1.0f / 4.0f;  // mean over the 4 counted rows
  auto loss = [&] {
    auto sums = cross_entropy_forward(pool, logits.data(), kTargets.data(), kN, kV, kScale,
                                      row_loss.data(), row_lse.data());
    return sums->loss_sum * dloss;
  };
  loss();
  std::vector<float> grad = logits;  // the backward works in place
  cross_entropy_backward(pool, grad.data(), kTargets.data(), row_lse.data(), kN, kV, kScale, dloss);
  for (size_t v = 0; v < kV; ++v) {
    EXPECT_EQ(grad[1 * kV + v], 0.0f);
    EXPECT_EQ(grad[4 * kV + v], 0.0f);
  }
  // Each counted row's gradient sums to 0 (softmax minus one-hot).
  double row_sum = 0.0;
  for (size_t v = 0; v < kV; ++v) row_sum += grad[v];
  EXPECT_NEAR(row_sum, 0.0, 1e-6);
  // Scale the check up: the mean-loss gradients are O(0.1).
  std::vector<float> scaled = grad;
  for (auto& g : scaled) g *= 4.0f;
  auto sum_loss = [&] { return loss() * 4.0; };
  kernel_test::expect_gradient_matches("cross_entropy dlogits", logits.data(), scaled.data(),
                                       scaled.size(), sum_loss);
}

TEST(KernelCrossEntropy, LargeVocabularyRowsAreStable) {
  // V spans several internal chunks; logits large enough to overflow a naive exp.
  ThreadPool pool(2);
  const size_t N = 3, V = 2000;
  auto logits = random_vector(N * V, 3, 50.0f);
  const std::vector<uint32_t> targets = {5, 1999, 1024};
  std::vector<float> row_loss(N), row_lse(N);
  auto sums = cross_entropy_forward(pool, logits.data(), targets.data(), N, V, 2.0f,
                                    row_loss.data(), row_lse.data());
  ASSERT_TRUE(sums.ok());
  for (size_t n = 0; n < N; ++n) {
    double m = -1e30, s = 0.0;
    for (size_t v = 0; v < V; ++v) m = std::max(m, 2.0 * logits[n * V + v]);
    for (size_t v = 0; v < V; ++v) s += std::exp(2.0 * logits[n * V + v] - m);
    EXPECT_NEAR(row_lse[n], m + std::log(s), 1e-6 * std::fabs(m));
  }
  EXPECT_TRUE(std::isfinite(sums->loss_sum));
}

}  // namespace
}  // namespace sc
