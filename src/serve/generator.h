// Text generation from a checkpoint: one token at a time with a KV cache,
// separate from the trainer (no gradients, no batch buffers), the piece the
// HTTP server will batch later.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "data/tokenizer.h"
#include "model/config.h"
#include "model/model.h"
#include "model/moe.h"

namespace sc {

struct SamplingOptions {
  int64_t max_tokens = 128;
  double temperature = 0.8;  // 0: greedy
  double top_p = 0.95;       // nucleus; 1: off
  int64_t top_k = 0;         // 0: off
  uint64_t seed = 0;
  bool stop_at_end_of_document = true;
};

class Generator {
 public:
  // `checkpoint_path`: one checkpoint, a run's checkpoints/ or a run
  // directory (run/checkpoint_store.h's resolve_checkpoint).
  static Result<std::unique_ptr<Generator>> load(const std::string& checkpoint_path, size_t threads);

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::string& checkpoint() const { return checkpoint_; }

  // Generates a continuation of `prompt`, calling on_token(id, text) as each
  // token is made (return false to stop). Returns the generated ids.
  using TokenFn = std::function<bool(uint32_t id, const std::string& text)>;
  Result<std::vector<uint32_t>> generate(const std::string& prompt, const SamplingOptions& options,
                                         const TokenFn& on_token);

  // Logits [V] (after the output multiplier) for `token` at `position`,
  // extending the cache (positions must come in order from 0).
  const float* decode_step(uint32_t token, int64_t position);

 private:
  Generator() = default;
  uint32_t sample(const SamplingOptions& options, uint64_t draw);

  ModelConfig config_;
  std::string checkpoint_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<TensorSpec> layout_;
  Arena arena_;
  float* params_ = nullptr;
  ModelWeights w_;
  GatedActivation act_ = GatedActivation::kGeluTanh;
  int64_t context_ = 0;
  float *k_cache_ = nullptr, *v_cache_ = nullptr;  // [L, context, Hkv·D]
  float *rope_cos_ = nullptr, *rope_sin_ = nullptr;
  float *x_, *normed_, *rstd_, *q_, *k_, *v_, *att_, *o_, *scores_, *gate_, *up_, *act_buf_, *logits_;
  std::vector<std::pair<float, uint32_t>> candidates_;
  MoeShape moe_shape_;        // one token
  MoeActivations moe_acts_{};  // buffers for that token, reused by every MoE layer
  MoeStats moe_stats_;
};

}  // namespace sc
