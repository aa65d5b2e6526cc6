#include "kernels/linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/kernel_test_util.h"

namespace sc {
namespace {

using kernel_test::random_vector;

// A weight matrix packed into one format, owning its storage.
struct Packed {
  std::vector<uint8_t> data;
  std::vector<float> scales;
  WeightMatrix matrix;
};

Packed pack(ThreadPool& pool, WeightFormat format, const std::vector<float>& W, size_t N, size_t K) {
  Packed p;
  p.data.resize(N * K * sizeof(float));
  p.scales.resize(N * int8_blocks_per_row(K));
  const Status status = pack_weight_matrix(pool, format, W.data(), N, K, p.data.data(), p.scales.data(), "W");
  EXPECT_TRUE(status.ok()) << status.message();
  p.matrix = {format, p.data.data(), format == WeightFormat::kInt8 ? p.scales.data() : nullptr};
  return p;
}

const WeightFormat kFormats[] = {WeightFormat::kF32, WeightFormat::kBf16, WeightFormat::kInt8};

struct Shape {
  size_t M, N, K;
};
// Odd sizes: K past a multiple of 16 and of the int8 block (tails), N past a
// multiple of the 4-row tile, M of every remainder mod 4, and M above
// kRowwiseMaxRows (the sgemm path); the last ones are big enough to split.
const Shape kShapes[] = {{1, 1, 1},   {1, 5, 16},   {2, 7, 33},   {3, 9, 47},    {4, 13, 64},
                         {5, 67, 100}, {7, 301, 299}, {32, 70, 96}, {33, 19, 41}, {40, 130, 77}};

// out of x·Wᵀ in double, W as the kernels read it (unpack_weight_rows).
std::vector<double> reference(const std::vector<float>& x, const WeightMatrix& W, const Shape& s) {
  std::vector<float> w(s.N * s.K);
  unpack_weight_rows(W, 0, s.N, s.K, w.data());
  std::vector<double> out(s.M * s.N, 0.0);
  for (size_t m = 0; m < s.M; ++m)
    for (size_t n = 0; n < s.N; ++n)
      for (size_t k = 0; k < s.K; ++k) out[m * s.N + n] += double(x[m * s.K + k]) * w[n * s.K + k];
  return out;
}

TEST(KernelLinear, EveryFormatMatchesItsUnpackedWeightsInDouble) {
  ThreadPool pool(2);
  for (WeightFormat format : kFormats) {
    double worst = 0.0;
    for (const Shape& s : kShapes) {
      const auto x = random_vector(s.M * s.K, 1), W = random_vector(s.N * s.K, 2), init = random_vector(s.M * s.N, 3);
      const Packed p = pack(pool, format, W, s.N, s.K);
      const auto ref = reference(x, p.matrix, s);
      std::vector<float> out(s.M * s.N, 7.0f);
      linear_forward(pool, out.data(), x.data(), p.matrix, s.M, s.N, s.K, false);
      worst = std::max(worst, kernel_test::worst_relative_difference("", out.data(), ref.data(), out.size()));
      std::vector<float> acc = init;
      linear_forward(pool, acc.data(), x.data(), p.matrix, s.M, s.N, s.K, true);
      std::vector<double> ref_acc(ref);
      for (size_t i = 0; i < ref_acc.size(); ++i) ref_acc[i] += init[i];
      worst = std::max(worst, kernel_test::worst_relative_difference("", acc.data(), ref_acc.data(), acc.size()));
    }
    std::printf("  %s: worst difference from double %.2e\n", weight_format_name(format), worst);
    EXPECT_LE(worst, 5e-5) << weight_format_name(format);
  }
}

// A decoded token must not depend on the batch it shares: every row of a
// call of up to kRowwiseMaxRows rows is bit-for-bit the row computed alone,
// with one thread or two.
TEST(KernelLinear, ARowIsTheSameBitsWhateverTheBatchAndThreads) {
  ThreadPool one(1), two(2);
  const size_t N = 203, K = 270;
  for (WeightFormat format : kFormats) {
    const auto W = random_vector(N * K, 4);
    const Packed p = pack(two, format, W, N, K);
    const auto x = random_vector(kRowwiseMaxRows * K, 5);
    std::vector<float> alone(kRowwiseMaxRows * N);
    for (size_t m = 0; m < kRowwiseMaxRows; ++m) {
      linear_forward(one, alone.data() + m * N, x.data() + m * K, p.matrix, 1, N, K, false);
    }
    size_t mismatches = 0;
    for (size_t M : {2, 3, 4, 5, 16, 31, static_cast<int>(kRowwiseMaxRows)}) {
      std::vector<float> batch(M * N);
      linear_forward(two, batch.data(), x.data(), p.matrix, M, N, K, false);
      mismatches += std::memcmp(batch.data(), alone.data(), M * N * sizeof(float)) != 0;
    }
    EXPECT_EQ(mismatches, 0u) << weight_format_name(format);
  }
}

TEST(KernelLinear, Bf16RoundsToNearestEvenAndKeepsSpecials) {
  // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties to the even 1.
  EXPECT_EQ(float_from_bf16(bf16_from_float(1.0f + 0x1p-8f)), 1.0f);
  // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to the even 1 + 2^-6.
  EXPECT_EQ(float_from_bf16(bf16_from_float(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
  EXPECT_EQ(float_from_bf16(bf16_from_float(1.0f + 0x1p-8f + 0x1p-12f)), 1.0f + 0x1p-7f);  // past half: up
  EXPECT_EQ(float_from_bf16(bf16_from_float(-2.5f)), -2.5f);                               // exact
  EXPECT_TRUE(std::isinf(float_from_bf16(bf16_from_float(std::numeric_limits<float>::infinity()))));
  EXPECT_TRUE(std::isnan(float_from_bf16(bf16_from_float(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits in the low bits only must not round into infinity.
  uint32_t low_nan_bits = 0x7f800001u;
  float low_nan;
  std::memcpy(&low_nan, &low_nan_bits, sizeof(low_nan));
  EXPECT_TRUE(std::isnan(float_from_bf16(bf16_from_float(low_nan))));
  // Every value within half a bf16 ulp (2^-8 relative).
  for (float v : random_vector(1000, 6, 3.0f)) EXPECT_LE(std::fabs(float_from_bf16(bf16_from_float(v)) - v), std::fabs(v) * 0x1p-8f);
}

TEST(KernelLinear, Int8BlocksQuantizeWithinHalfAStep) {
  ThreadPool pool(2);
  const size_t N = 9, K = 75;  // three blocks per row, the last of 11
  auto W = random_vector(N * K, 7);
  for (size_t k = 32; k < 64; ++k) W[2 * K + k] = 0.0f;  // an all-zero block
  W[5 * K + 40] = 50.0f;                                  // an outlier: only its own block coarsens
  const Packed p = pack(pool, WeightFormat::kInt8, W, N, K);
  std::vector<float> back(N * K);
  unpack_weight_rows(p.matrix, 0, N, K, back.data());
  const size_t blocks = int8_blocks_per_row(K);
  ASSERT_EQ(blocks, 3u);
  for (size_t n = 0; n < N; ++n) {
    for (size_t k = 0; k < K; ++k) {
      const float scale = p.scales[n * blocks + k / kInt8BlockSize];
      EXPECT_LE(std::fabs(back[n * K + k] - W[n * K + k]), 0.5f * scale + 1e-7f) << n << "," << k;
    }
  }
  EXPECT_EQ(p.scales[2 * blocks + 1], 0.0f);
  for (size_t k = 32; k < 64; ++k) EXPECT_EQ(back[2 * K + k], 0.0f);
  EXPECT_FLOAT_EQ(back[5 * K + 40], 50.0f);  // the block's largest maps to 127 exactly
  EXPECT_LT(p.scales[5 * blocks + 0], 0.1f);  // the outlier's neighbours keep a fine scale
}

TEST(KernelLinear, PackingANonFiniteWeightIsAnErrorNamingTheMatrix) {
  ThreadPool pool(2);
  for (WeightFormat format : kFormats) {
    std::vector<float> W(4 * 8, 1.0f);
    W[2 * 8 + 3] = std::numeric_limits<float>::quiet_NaN();
    std::vector<uint8_t> data(W.size() * 4);
    std::vector<float> scales(4);
    const Status status = pack_weight_matrix(pool, format, W.data(), 4, 8, data.data(), scales.data(), "model.layers.0.mlp.up_proj.weight");
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.message().find("model.layers.0.mlp.up_proj.weight: row 2"), std::string::npos) << status.message();
  }
}

TEST(KernelLinear, FormatNamesRoundTrip) {
  for (WeightFormat format : kFormats) EXPECT_EQ(weight_format_from_name(weight_format_name(format)), format);
  EXPECT_FALSE(weight_format_from_name("fp16").has_value());
  EXPECT_EQ(weight_matrix_bytes(WeightFormat::kInt8, 2, 40), 2 * 40 + 2 * 2 * sizeof(float));
}

}  // namespace
}  // namespace sc
