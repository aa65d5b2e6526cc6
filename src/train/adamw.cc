#include "train/adamw.h"

#include <algorithm>
#include <cmath>

namespace sc {

std::vector<DecayRange> decay_ranges(const std::vector<TensorSpec>& layout) {
  std::vector<DecayRange> ranges;
  ranges.reserve(layout.size());
  for (const TensorSpec& t : layout) {
    ranges.push_back({static_cast<size_t>(t.offset), static_cast<size_t>(t.offset + t.numel()), !t.is_norm});
  }
  return ranges;
}

AdamW::AdamW(const AdamWConfig& config, std::vector<DecayRange> ranges, float* m, float* v, size_t size)
    : config_(config), ranges_(std::move(ranges)), m_(m), v_(v), size_(size) {
  std::fill(m_, m_ + size_, 0.0f);
  std::fill(v_, v_ + size_, 0.0f);
}

void AdamW::update(float* params, const float* grads, double lr, int64_t step, ThreadPool& pool) const {
  const double bias1 = 1.0 - std::pow(config_.beta1, static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(config_.beta2, static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bias1);
  const float inv_sqrt_bias2 = static_cast<float>(1.0 / std::sqrt(bias2));
  const float beta1 = static_cast<float>(config_.beta1), beta2 = static_cast<float>(config_.beta2);
  const float one_minus_beta1 = static_cast<float>(1.0 - config_.beta1);
  const float one_minus_beta2 = static_cast<float>(1.0 - config_.beta2);
  const float eps = static_cast<float>(config_.eps);
  const float decay_factor = static_cast<float>(1.0 - lr * config_.weight_decay);
  for (const DecayRange& range : ranges_) {
    const size_t begin = std::min(range.begin, size_), end = std::min(range.end, size_);
    if (begin >= end) continue;
    const float decay = range.decay ? decay_factor : 1.0f;
    pool.parallel_for(end - begin, [&](size_t lo, size_t hi, size_t) {
      float* p = params + begin;
      const float* g = grads + begin;
      float* m = m_ + begin;
      float* v = v_ + begin;
      for (size_t i = lo; i < hi; ++i) {
        p[i] *= decay;
        m[i] = beta1 * m[i] + one_minus_beta1 * g[i];
        v[i] = beta2 * v[i] + one_minus_beta2 * g[i] * g[i];
        p[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bias2 + eps);
      }
    });
  }
}

double sum_of_squares(const float* grads, size_t size, ThreadPool& pool) {
  std::vector<double> partial(pool.num_threads(), 0.0);
  pool.parallel_for(size, [&](size_t lo, size_t hi, size_t thread) {
    double sum = 0.0;
    for (size_t i = lo; i < hi; ++i) sum += static_cast<double>(grads[i]) * grads[i];
    partial[thread] = sum;
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

double clip_grad_norm(float* grads, size_t size, double norm, double max_norm, ThreadPool& pool) {
  if (max_norm <= 0.0) return norm;
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return norm;
  const float scale = static_cast<float>(coef);
  pool.parallel_for(size, [&](size_t lo, size_t hi, size_t) {
    for (size_t i = lo; i < hi; ++i) grads[i] *= scale;
  });
  return norm;
}

}  // namespace sc
