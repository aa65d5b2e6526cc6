// Per-element math of the model, written once for the CPU loops in
// src/kernels/*.cc and for CUDA kernels (SC_HOST_DEVICE). Every function is
// branch-free on the host (selects, not ifs), so a loop that calls it
// vectorizes under -O3 without -ffast-math; host tests compare each one with
// the std:: version.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define SC_HOST_DEVICE __host__ __device__
#else
#define SC_HOST_DEVICE
#endif

namespace sc {

namespace device_math_detail {
SC_HOST_DEVICE inline float bits_to_float(int32_t bits) {
#ifdef __CUDA_ARCH__
  return __int_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
#endif
}
SC_HOST_DEVICE inline int32_t float_to_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_int(f);
#else
  int32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
#endif
}
}  // namespace device_math_detail

// Inputs below this give exactly 0 from exp_fast.
inline constexpr float kExpFastMin = -87.0f;
// exp_fast saturates here (exp(88) = 1.65e38 < FLT_MAX): it never returns inf.
inline constexpr float kExpFastMax = 88.0f;

// e^x to within 2 ulp on [kExpFastMin, kExpFastMax]; 0 below, e^88 above.
// Cody-Waite reduction x = k·ln2 + r, |r| <= ln2/2, and the Cephes expf
// polynomial; glibc's expf does not vectorize, this does.
SC_HOST_DEVICE inline float exp_fast(float x) {
#ifdef __CUDA_ARCH__
  return x < kExpFastMin ? 0.0f : expf(fminf(x, kExpFastMax));
#else
  using namespace device_math_detail;
  float xc = x < kExpFastMin ? kExpFastMin : x;
  xc = xc > kExpFastMax ? kExpFastMax : xc;
  // Round x/ln2 to the nearest integer by adding 1.5·2^23: the integer lands
  // in the low mantissa bits of `shifted`.
  constexpr float kRoundMagic = 12582912.0f;
  float shifted = xc * 1.44269504088896341f + kRoundMagic;
  float k = shifted - kRoundMagic;
  int32_t ki = float_to_bits(shifted) - float_to_bits(kRoundMagic);
  float r = xc - k * 0.693359375f;  // ln2 split in a part exact in fp32 ...
  r = r - k * -2.12194440e-4f;      // ... and the rest
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * (r * r) + r + 1.0f;
  float scale = bits_to_float((ki + 127) << 23);
  return x < kExpFastMin ? 0.0f : y * scale;
#endif
}

// tanh to within a few ulp (absolute error < 2e-7 everywhere). Small |x| use
// the Cephes odd polynomial (keeps relative accuracy near 0), larger |x| use
// 1 - 2/(e^{2|x|} + 1).
SC_HOST_DEVICE inline float tanh_fast(float x) {
#ifdef __CUDA_ARCH__
  return tanhf(x);
#else
  float ax = x < 0.0f ? -x : x;
  float z = x * x;
  float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                  1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  float e = exp_fast(2.0f * (ax < 44.0f ? ax : 44.0f));
  float large = 1.0f - 2.0f / (e + 1.0f);
  large = x < 0.0f ? -large : large;
  return ax < 0.625f ? small : large;
#endif
}

SC_HOST_DEVICE inline float sigmoid(float x) { return 1.0f / (1.0f + exp_fast(-x)); }

// gelu_tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))  (PyTorch approximate="tanh")
inline constexpr float kGeluSqrt2OverPi = 0.7978845608028654f;
inline constexpr float kGeluCubic = 0.044715f;

SC_HOST_DEVICE inline float gelu_tanh(float x) {
  float u = kGeluSqrt2OverPi * (x + kGeluCubic * x * x * x);
  return 0.5f * x * (1.0f + tanh_fast(u));
}

// d gelu_tanh / dx.
SC_HOST_DEVICE inline float gelu_tanh_grad(float x) {
  float u = kGeluSqrt2OverPi * (x + kGeluCubic * x * x * x);
  float t = tanh_fast(u);
  float du = kGeluSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

// silu(x) = x·σ(x)
SC_HOST_DEVICE inline float silu(float x) { return x * sigmoid(x); }

// d silu / dx = σ(x)·(1 + x·(1 − σ(x)))
SC_HOST_DEVICE inline float silu_grad(float x) {
  float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

// Attention-logit soft-capping: c·tanh(s/c), c > 0.
SC_HOST_DEVICE inline float softcap(float s, float cap) { return cap * tanh_fast(s / cap); }

// d softcap / ds, from the capped value y = softcap(s, c): 1 − (y/c)².
SC_HOST_DEVICE inline float softcap_grad_from_output(float capped, float cap) {
  float t = capped / cap;
  return 1.0f - t * t;
}

// d softcap / ds from the input s.
SC_HOST_DEVICE inline float softcap_grad(float s, float cap) {
  return softcap_grad_from_output(softcap(s, cap), cap);
}

// RoPE inverse frequency θ_i = theta^(−2i/D) for pair i < D/2 (computed in
// double: it feeds angles p·θ_i up to p ~ 10^4).
SC_HOST_DEVICE inline double rope_inv_freq(int pair_index, int head_dim, double theta) {
  return pow(theta, -2.0 * pair_index / head_dim);
}

// Rotate-half RoPE of one pair (x[i], x[i + D/2]) by an angle with cos c, sin s.
SC_HOST_DEVICE inline void rope_rotate(float& lo, float& hi, float c, float s) {
  float a = lo, b = hi;
  lo = a * c - b * s;
  hi = b * c + a * s;
}

// The inverse rotation (angle −θ): the backward of rope_rotate.
SC_HOST_DEVICE inline void rope_rotate_inverse(float& lo, float& hi, float c, float s) {
  float a = lo, b = hi;
  lo = a * c + b * s;
  hi = b * c - a * s;
}

// RMSNorm's reciprocal root mean square 1/sqrt(mean(x²) + eps) from the sum of squares.
SC_HOST_DEVICE inline float rmsnorm_rstd(float sum_squares, int width, float eps) {
  return 1.0f / sqrtf(sum_squares / static_cast<float>(width) + eps);
}

}  // namespace sc
