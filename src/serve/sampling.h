// Choosing the next token from a forward's logits: temperature, top-k and
// top-p (nucleus) sampling with a counter-based random draw, so a sequence's
// n-th token depends only on its seed, n and its logits. `generate` and the
// server's engine both sample here: the same seed gives the same text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sc {

struct SamplingOptions {
  int64_t max_tokens = 128;  // [0, 16777216]
  double temperature = 0.8;  // 0: greedy, else [0.001, 100]
  double top_p = 0.95;       // nucleus, (0, 1]; 1: off
  int64_t top_k = 0;         // [0, 16777216]; 0: off
  uint64_t seed = 0;
  bool stop_at_end_of_document = true;

  // Every number finite and in its range above; errors name the flag.
  Status validate() const;
};

// Samples over the first `vocab` logits (ids the tokenizer knows; the model's
// vocabulary may be padded). Holds scratch space: one per thread.
class Sampler {
 public:
  explicit Sampler(size_t vocab) : vocab_(vocab) {}

  // The token for draw number `draw` (the index of the token in its
  // sequence) of the sequence sampled with `options`.
  uint32_t sample(const float* logits, const SamplingOptions& options, uint64_t draw);

 private:
  size_t vocab_;
  std::vector<std::pair<float, uint32_t>> candidates_;
};

}  // namespace sc
