// AdamW (decoupled weight decay, Loshchilov & Hutter) over the one flat
// parameter buffer, step for step the same arithmetic as torch.optim.AdamW,
// and global-norm gradient clipping as torch.nn.utils.clip_grad_norm_.
// The moments cover a list of segments of the buffer: the whole buffer on one
// rank, or the rank's shards of every bucket under ZeRO-1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "model/counts.h"

namespace sc {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

// A run of parameters [begin, end) in floats, and whether weight decay applies
// (not to norm weights: decaying a gain toward 0 only fights the model).
struct DecayRange {
  size_t begin = 0;
  size_t end = 0;
  bool decay = true;
};

// One range per tensor of the layout, decayed unless it is a norm weight.
std::vector<DecayRange> decay_ranges(const std::vector<TensorSpec>& layout);

// Parameters [begin, end) of the flat buffer whose moments sit at
// m[local, local + end - begin) (and the same in v).
struct OwnedSegment {
  size_t begin = 0;
  size_t end = 0;
  size_t local = 0;
};

class AdamW {
 public:
  // `m` and `v` are caller-owned buffers (arena) of `size` floats, zeroed
  // here, holding the moments of params[0, size).
  AdamW(const AdamWConfig& config, std::vector<DecayRange> ranges, float* m, float* v, size_t size);
  // The same for the parameters of `segments` only (a ZeRO-1 shard); `size`
  // is the moments' length, at least every segment's local end.
  AdamW(const AdamWConfig& config, std::vector<DecayRange> ranges, std::vector<OwnedSegment> segments, float* m,
        float* v, size_t size);

  // One update of the owned parameters from grads · grad_scale (the clipping
  // coefficient, applied here instead of in a pass of its own); params and
  // grads are the whole flat buffers; `step` counts from 1. Parameters
  // outside every decay range (alignment gaps, padding) are left alone.
  void update(float* params, const float* grads, double lr, int64_t step, ThreadPool& pool,
              float grad_scale = 1.0f) const;

  float* m() const { return m_; }
  float* v() const { return v_; }
  size_t size() const { return size_; }
  const std::vector<OwnedSegment>& segments() const { return segments_; }
  const AdamWConfig& config() const { return config_; }

 private:
  AdamWConfig config_;
  std::vector<DecayRange> ranges_;
  std::vector<OwnedSegment> segments_;
  float* m_;
  float* v_;
  size_t size_;
};

// Sum of squares of grads[0, size), accumulated in double in a fixed order
// that does not depend on the thread count (kernels/elementwise.h).
double sum_of_squares(const float* grads, size_t size, ThreadPool& pool);

// The factor clip_grad_norm_ scales gradients by so their global norm is at
// most max_norm: max_norm / (norm + 1e-6) when that is below 1, else 1 (and 1
// when max_norm <= 0, clipping off).
float clip_coefficient(double norm, double max_norm);

}  // namespace sc
