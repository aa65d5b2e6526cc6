#include "kernels/activation.h"

#include <gtest/gtest.h>

#include <vector>

#include "kernels/device_math.h"
#include "kernels/kernel_test_util.h"

namespace sc {
namespace {

using kernel_test::random_vector;

TEST(KernelActivation, NamesFromConfig) {
  EXPECT_EQ(*gated_activation_from_name("gelu_pytorch_tanh"), GatedActivation::kGeluTanh);
  EXPECT_EQ(*gated_activation_from_name("silu"), GatedActivation::kSilu);
  auto bad = gated_activation_from_name("relu");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("relu"), std::string::npos);
}

TEST(KernelActivation, ForwardMatchesDeviceMath) {
  // Large enough to run on both threads.
  ThreadPool pool(2);
  const size_t count = 70001;
  auto gate = random_vector(count, 1, 2.0f);
  auto up = random_vector(count, 2);
  std::vector<float> out(count);
  gated_activation_forward(pool, out.data(), gate.data(), up.data(), count,
                           GatedActivation::kGeluTanh);
  for (size_t i = 0; i < count; ++i) ASSERT_EQ(out[i], gelu_tanh(gate[i]) * up[i]) << i;
  gated_activation_forward(pool, out.data(), gate.data(), up.data(), count, GatedActivation::kSilu);
  for (size_t i = 0; i < count; ++i) ASSERT_EQ(out[i], silu(gate[i]) * up[i]) << i;
}

TEST(KernelActivation, BackwardMatchesFiniteDifferences) {
  ThreadPool pool(2);
  const size_t N = 6, F = 8, count = N * F;
  for (GatedActivation act : {GatedActivation::kGeluTanh, GatedActivation::kSilu}) {
    const std::string name = act == GatedActivation::kGeluTanh ? "gelu_tanh" : "silu";
    auto gate = random_vector(count, 3, 1.5f);
    auto up = random_vector(count, 4);
    auto R = random_vector(count, 5);
    std::vector<float> out(count);
    auto loss = [&] {
      gated_activation_forward(pool, out.data(), gate.data(), up.data(), count, act);
      return kernel_test::weighted_sum(out, R);
    };
    std::vector<float> dgate(count, 0.0f), dup(count, 0.0f);
    gated_activation_backward(pool, dgate.data(), dup.data(), R.data(), gate.data(), up.data(),
                              count, act);
    kernel_test::expect_gradient_matches(name + " dgate", gate.data(), dgate.data(), count, loss);
    kernel_test::expect_gradient_matches(name + " dup", up.data(), dup.data(), count, loss);
  }
}

}  // namespace
}  // namespace sc
