// Fused softmax cross-entropy over the vocabulary with ignore_index.
// logits_used = logit_scale · raw (output_multiplier_scale applied here).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "core/thread_pool.h"

namespace sc {

// A target equal to this (−1 as int32) does not count.
inline constexpr uint32_t kIgnoreIndex = 0xFFFFFFFFu;

struct CrossEntropySums {
  double loss_sum = 0.0;  // Σ over counted rows of −log softmax(logits_used)[target]
  size_t count = 0;       // rows whose target is not kIgnoreIndex
};

// raw_logits [N, V], targets [N]. Writes row_loss [N] (0 for ignored rows) and
// row_lse [N] (log-sum-exp of logits_used, for the backward). The sums are
// taken in row order in double, so they do not depend on the pool size.
// Fails (writing nothing) when a target is >= V and not kIgnoreIndex.
// logit_scale must be > 0.
Result<CrossEntropySums> cross_entropy_forward(ThreadPool& pool, const float* raw_logits,
                                               const uint32_t* targets, size_t N, size_t V,
                                               float logit_scale, float* row_loss,
                                               float* row_lse);

// IN PLACE: overwrites logits [N, V] (the raw logits of the forward) with
//   ∂L/∂raw = dloss · logit_scale · (softmax(logits_used) − onehot(target)),
// where L = dloss · Σ_counted row_loss (dloss = 1/count gives the mean loss).
// Rows with an ignored target become zero. Needs row_lse of the forward.
void cross_entropy_backward(ThreadPool& pool, float* logits, const uint32_t* targets,
                            const float* row_lse, size_t N, size_t V, float logit_scale,
                            float dloss);

}  // namespace sc
