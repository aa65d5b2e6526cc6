#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "kernels/device_math.h"
#include "kernels/vec.h"

namespace sc {
namespace {

// Exponentials are formed in stack chunks of this many floats, then summed
// with the lane-parallel vec::sum (a fused loop would not vectorize).
constexpr size_t kChunk = 512;

// log Σ_v exp(scale·x[v]) for one row.
float row_log_sum_exp(const float* x, size_t V, float scale) {
  const float m = scale * vec::max(x, V);  // scale > 0
  float buffer[kChunk];
  float sum = 0.0f;
  for (size_t v0 = 0; v0 < V; v0 += kChunk) {
    const size_t n = std::min(kChunk, V - v0);
    for (size_t i = 0; i < n; ++i) buffer[i] = exp_fast(scale * x[v0 + i] - m);
    sum += vec::sum(buffer, n);
  }
  return m + std::log(sum);
}

}  // namespace

Result<CrossEntropySums> cross_entropy_forward(ThreadPool& pool, const float* raw_logits,
                                               const uint32_t* targets, size_t N, size_t V,
                                               float logit_scale, float* row_loss,
                                               float* row_lse) {
  for (size_t n = 0; n < N; ++n) {
    if (targets[n] != kIgnoreIndex && targets[n] >= V) {
      return Status::invalid(
          "cross_entropy: target {} at position {} is outside the vocabulary of {}", targets[n],
          n, V);
    }
  }
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    for (size_t n = begin; n < end; ++n) {
      const float* x = raw_logits + n * V;
      const float lse = row_log_sum_exp(x, V, logit_scale);
      row_lse[n] = lse;
      row_loss[n] = targets[n] == kIgnoreIndex ? 0.0f : lse - logit_scale * x[targets[n]];
    }
  });
  CrossEntropySums sums;
  for (size_t n = 0; n < N; ++n) {
    if (targets[n] == kIgnoreIndex) continue;
    sums.loss_sum += row_loss[n];
    ++sums.count;
  }
  return sums;
}

void cross_entropy_backward(ThreadPool& pool, float* logits, const uint32_t* targets,
                            const float* row_lse, size_t N, size_t V, float logit_scale,
                            float dloss) {
  const float g = dloss * logit_scale;
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    for (size_t n = begin; n < end; ++n) {
      float* x = logits + n * V;
      if (targets[n] == kIgnoreIndex) {
        std::fill(x, x + V, 0.0f);
        continue;
      }
      const float lse = row_lse[n];
      for (size_t v = 0; v < V; ++v) x[v] = g * exp_fast(logit_scale * x[v] - lse);
      x[targets[n]] -= g;
    }
  });
}

}  // namespace sc
