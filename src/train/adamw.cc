#include "train/adamw.h"

#include "kernels/elementwise.h"

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
    : AdamW(config, std::move(ranges), {OwnedSegment{0, size, 0}}, m, v, size) {}

AdamW::AdamW(const AdamWConfig& config, std::vector<DecayRange> ranges, std::vector<OwnedSegment> segments, float* m,
             float* v, size_t size)
    : config_(config), ranges_(std::move(ranges)), segments_(std::move(segments)), m_(m), v_(v), size_(size) {
  std::fill(m_, m_ + size_, 0.0f);
  std::fill(v_, v_ + size_, 0.0f);
}

namespace {
struct AdamWStep {
  float beta1, beta2, one_minus_beta1, one_minus_beta2, step_size, inv_sqrt_bias2, eps, decay, grad_scale;
};

// The per-element update, in a plain function with restrict pointers and its
// constants by value, so the compiler vectorizes it (sqrt and division included).
void adamw_elements(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                    size_t n, const AdamWStep k) {
  for (size_t i = 0; i < n; ++i) {
    const float gi = g[i] * k.grad_scale;
    const float mi = k.beta1 * m[i] + k.one_minus_beta1 * gi;
    const float vi = k.beta2 * v[i] + k.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * k.decay - k.step_size * mi / (std::sqrt(vi) * k.inv_sqrt_bias2 + k.eps);
  }
}
}  // namespace

void AdamW::update(float* params, const float* grads, double lr, int64_t step, ThreadPool& pool,
                   float grad_scale) const {
  const double bias1 = 1.0 - std::pow(config_.beta1, static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(config_.beta2, static_cast<double>(step));
  AdamWStep k{static_cast<float>(config_.beta1),       static_cast<float>(config_.beta2),
              static_cast<float>(1.0 - config_.beta1), static_cast<float>(1.0 - config_.beta2),
              static_cast<float>(lr / bias1),          static_cast<float>(1.0 / std::sqrt(bias2)),
              static_cast<float>(config_.eps),         1.0f,
              grad_scale};
  const float decay_factor = static_cast<float>(1.0 - lr * config_.weight_decay);
  for (const OwnedSegment& segment : segments_) {
    for (const DecayRange& range : ranges_) {
      const size_t begin = std::max(range.begin, segment.begin), end = std::min(range.end, segment.end);
      if (begin >= end) continue;
      k.decay = range.decay ? decay_factor : 1.0f;
      float* m = m_ + segment.local + (begin - segment.begin);
      float* v = v_ + segment.local + (begin - segment.begin);
      pool.parallel_for(end - begin, [&, k, m, v](size_t lo, size_t hi, size_t) {
        adamw_elements(params + begin + lo, grads + begin + lo, m + lo, v + lo, hi - lo, k);
      });
    }
  }
}

double sum_of_squares(const float* grads, size_t size, ThreadPool& pool) {
  // The kernel sums fixed chunks in a fixed order (16 double lanes each), so
  // the norm is the same for any thread count; its scratch is kept between
  // steps so the step allocates nothing.
  thread_local std::vector<double> scratch;
  scratch.resize(sum_squares_scratch_doubles(size));
  return sum_squares(pool, grads, size, scratch.data());
}

float clip_coefficient(double norm, double max_norm) {
  if (max_norm <= 0.0) return 1.0f;
  const double coef = max_norm / (norm + 1e-6);
  return coef < 1.0 ? static_cast<float>(coef) : 1.0f;
}

}  // namespace sc
