// Text generation from a checkpoint: sampling and KV-cache bookkeeping over
// the model's own inference path (model/inference.h): the prompt in one
// prefill, then one decode per new token. One sequence in cache slot 0; the
// HTTP server will batch many over the same Inference.
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
#include "model/inference.h"
#include "serve/loaded_model.h"
#include "serve/sampling.h"

namespace sc {

class Generator {
 public:
  // `checkpoint_path`: one checkpoint, a run's checkpoints/ or a run
  // directory (run/checkpoint_store.h's resolve_checkpoint).
  // `weights`: the format of the matrices (model/packed_weights.h).
  static Result<std::unique_ptr<Generator>> load(const std::string& checkpoint_path, size_t threads,
                                                 WeightFormat weights = WeightFormat::kF32);

  const ModelConfig& config() const { return model_->config(); }
  const Tokenizer& tokenizer() const { return model_->tokenizer(); }
  const std::string& checkpoint() const { return model_->checkpoint(); }

  // The tokens generation starts from: the end-of-document token (training
  // documents follow one) and the prompt's. A prompt that leaves no room in
  // the model's context is an error.
  Result<std::vector<uint32_t>> encode_prompt(const std::string& prompt) const;

  // Generates a continuation of `prompt`, calling on_token(id, text) as each
  // token is made (return false to stop). Returns the generated ids.
  using TokenFn = std::function<bool(uint32_t id, const std::string& text)>;
  Result<std::vector<uint32_t>> generate(const std::string& prompt, const SamplingOptions& options,
                                         const TokenFn& on_token);
  // The same from encode_prompt()'s tokens.
  Result<std::vector<uint32_t>> generate_from(const std::vector<uint32_t>& context, const SamplingOptions& options,
                                              const TokenFn& on_token);

 private:
  Generator() = default;

  std::unique_ptr<LoadedModel> model_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Inference> inference_;
  KvCache cache_;  // one slot of the whole context
  std::unique_ptr<Sampler> sampler_;
};

}  // namespace sc
