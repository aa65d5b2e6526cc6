// How a weight matrix is stored for the forward: fp32 (the parameters
// themselves), bf16, or 8-bit integers with one fp32 scale per block of
// kInt8BlockSize weights along a row (llama.cpp's q8_0 layout, the scales
// kept apart from the integers). Decode is memory-bound: its speed is the
// bytes of weights it reads per token, 4, 2 or 1.125 per weight.
//
// The per-element conversions are written once here for the CPU loops and
// future CUDA kernels (SC_HOST_DEVICE, as kernels/device_math.h).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include "kernels/device_math.h"

namespace sc {

enum class WeightFormat : uint8_t { kF32, kBf16, kInt8 };

// "fp32", "bf16", "int8": the names of --weights.
const char* weight_format_name(WeightFormat format);
std::optional<WeightFormat> weight_format_from_name(std::string_view name);

// Weights per int8 scale along a row; a row's last block may be shorter.
inline constexpr size_t kInt8BlockSize = 32;

inline constexpr size_t int8_blocks_per_row(size_t K) { return (K + kInt8BlockSize - 1) / kInt8BlockSize; }

// A row-major [N, K] matrix W in `format`, as y = x·Wᵀ reads it: data points
// at N·K floats, bf16 values or int8 values; scales, for int8 only, at
// [N, int8_blocks_per_row(K)] fp32 scales (weight = scale · integer). Not
// owning.
struct WeightMatrix {
  WeightFormat format = WeightFormat::kF32;
  const void* data = nullptr;
  const float* scales = nullptr;

  static WeightMatrix f32(const float* w) { return {WeightFormat::kF32, w, nullptr}; }
};

// Bytes a [N, K] matrix takes in `format`, scales included.
inline size_t weight_matrix_bytes(WeightFormat format, size_t N, size_t K) {
  switch (format) {
    case WeightFormat::kF32: return N * K * sizeof(float);
    case WeightFormat::kBf16: return N * K * sizeof(uint16_t);
    case WeightFormat::kInt8: return N * K + N * int8_blocks_per_row(K) * sizeof(float);
  }
  return 0;
}

// fp32 -> bf16, rounding to nearest with ties to even (as PyTorch and the
// hardware converters do); a NaN stays a NaN (its quiet bit set, so rounding
// cannot carry it into infinity).
SC_HOST_DEVICE inline uint16_t bf16_from_float(float f) {
  const uint32_t bits = static_cast<uint32_t>(device_math_detail::float_to_bits(f));
  const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
  const uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(nan ? ((bits >> 16) | 0x40u) : (rounded >> 16));
}

// bf16 -> fp32 is exact: the bf16 bits are fp32's upper half.
SC_HOST_DEVICE inline float float_from_bf16(uint16_t b) {
  return device_math_detail::bits_to_float(static_cast<int32_t>(static_cast<uint32_t>(b) << 16));
}

// The scale of one int8 block: its largest magnitude maps to ±127
// (symmetric, no zero point: weights are centred). An all-zero block gets
// scale 0, and every weight of it quantizes to 0.
SC_HOST_DEVICE inline float int8_block_scale(float max_abs) { return max_abs / 127.0f; }

// One weight of a block with that scale: round(w / scale) to nearest (ties
// away from zero), clamped to [-127, 127].
SC_HOST_DEVICE inline int8_t int8_quantize(float w, float scale) {
  const float q = scale > 0.0f ? w / scale : 0.0f;
  const float r = q < 0.0f ? -std::floor(-q + 0.5f) : std::floor(q + 0.5f);
  const float c = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
  return static_cast<int8_t>(c == c ? c : 0.0f);  // a NaN (which packing refuses first) must not reach the cast
}

}  // namespace sc
