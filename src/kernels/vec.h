// Row reductions for the CPU kernels (sum, max, dot) with 16 independent
// lanes in GCC/Clang vector types. Without -ffast-math the compiler may not
// reorder a float reduction, so a plain `s += x[i]` loop stays scalar; these
// fix one summation order (16 lanes, then the lanes in order, then the tail),
// so a result depends only on the data and n, never on threads or timing.
// Host only.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstring>

namespace sc::vec {

inline constexpr size_t kLanes = 16;
typedef float F16 __attribute__((vector_size(kLanes * sizeof(float))));

inline F16 load(const float* p) {
  F16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline F16 splat(float x) {
  F16 v;
  for (size_t l = 0; l < kLanes; ++l) v[l] = x;
  return v;
}
inline float lanes_sum(F16 v) {
  float s = 0.0f;
  for (size_t l = 0; l < kLanes; ++l) s += v[l];
  return s;
}
inline float lanes_max(F16 v) {
  float m = v[0];
  for (size_t l = 1; l < kLanes; ++l) m = v[l] > m ? v[l] : m;
  return m;
}

// Σ x[i]
inline float sum(const float* x, size_t n) {
  F16 acc = splat(0.0f);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc += load(x + i);
  float s = lanes_sum(acc);
  for (; i < n; ++i) s += x[i];
  return s;
}

// max x[i]; -inf for n = 0.
inline float max(const float* x, size_t n) {
  F16 acc = splat(-INFINITY);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    F16 v = load(x + i);
    acc = v > acc ? v : acc;
  }
  float m = lanes_max(acc);
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// Σ a[i]·b[i]
inline float dot(const float* a, const float* b, size_t n) {
  F16 acc = splat(0.0f);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc += load(a + i) * load(b + i);
  float s = lanes_sum(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Σ a[i]·b[i]·c[i]
inline float dot3(const float* a, const float* b, const float* c, size_t n) {
  F16 acc = splat(0.0f);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc += load(a + i) * load(b + i) * load(c + i);
  float s = lanes_sum(acc);
  for (; i < n; ++i) s += a[i] * b[i] * c[i];
  return s;
}

}  // namespace sc::vec
