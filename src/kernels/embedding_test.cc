#include "kernels/embedding.h"

#include <gtest/gtest.h>

#include <vector>

#include "kernels/kernel_test_util.h"

namespace sc {
namespace {

using kernel_test::random_vector;

TEST(KernelEmbedding, ForwardLooksUpAndScales) {
  ThreadPool pool(2);
  const size_t V = 11, C = 8, N = 6;
  auto E = random_vector(V * C, 1);
  const std::vector<uint32_t> tokens = {3, 0, 10, 3, 7, 1};
  std::vector<float> out(N * C);
  ASSERT_TRUE(embedding_forward(pool, out.data(), tokens.data(), E.data(), N, V, C, 2.5f).ok());
  for (size_t n = 0; n < N; ++n)
    for (size_t c = 0; c < C; ++c) EXPECT_EQ(out[n * C + c], E[tokens[n] * C + c] * 2.5f);
}

TEST(KernelEmbedding, RejectsTokenOutsideVocabulary) {
  ThreadPool pool(1);
  const std::vector<uint32_t> tokens = {1, 11};
  std::vector<float> E(11 * 4, 0.0f), out(2 * 4, 0.0f);
  Status s = embedding_forward(pool, out.data(), tokens.data(), E.data(), 2, 11, 4, 1.0f);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("position 1"), std::string::npos) << s.message();
}

TEST(KernelEmbedding, BackwardMatchesFiniteDifferences) {
  ThreadPool pool(2);
  const size_t V = 11, C = 8, N = 6;
  const float multiplier = 1.7f;
  auto E = random_vector(V * C, 2);
  const std::vector<uint32_t> tokens = {3, 0, 10, 3, 7, 3};  // repeated tokens sum
  auto R = random_vector(N * C, 3);
  std::vector<float> out(N * C);
  auto loss = [&] {
    EXPECT_TRUE(embedding_forward(pool, out.data(), tokens.data(), E.data(), N, V, C, multiplier).ok());
    return kernel_test::weighted_sum(out, R);
  };
  std::vector<float> dE(V * C, 0.0f);
  embedding_backward(pool, dE.data(), R.data(), tokens.data(), N, C, multiplier);
  kernel_test::expect_gradient_matches("embedding dE", E.data(), dE.data(), dE.size(), loss);
}

TEST(KernelEmbedding, BackwardIsIdenticalForOneAndTwoThreads) {
  const size_t V = 50, C = 100, N = 400;
  auto dy = random_vector(N * C, 4);
  std::vector<uint32_t> tokens(N);
  for (size_t n = 0; n < N; ++n) tokens[n] = uint32_t((n * 7919) % V);
  std::vector<float> results[2];
  for (size_t threads : {1, 2}) {
    ThreadPool pool(threads);
    results[threads - 1].assign(V * C, 0.5f);
    embedding_backward(pool, results[threads - 1].data(), dy.data(), tokens.data(), N, C, 3.0f);
  }
  EXPECT_EQ(results[0], results[1]);
}

}  // namespace
}  // namespace sc
