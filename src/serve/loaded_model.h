// A checkpoint loaded for inference: its config, tokenizer and weights, read
// once and only read afterwards. `generate` and the server both start here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/arena.h"
#include "core/status.h"
#include "data/tokenizer.h"
#include "model/config.h"

namespace sc {

class LoadedModel {
 public:
  // `checkpoint_path`: one checkpoint, a run's checkpoints/ or a run
  // directory (run/checkpoint_store.h's resolve_checkpoint). Errors name the
  // file that is missing or wrong.
  static Result<std::unique_ptr<LoadedModel>> load(const std::string& checkpoint_path);

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::string& checkpoint() const { return checkpoint_; }  // .../step_NNNNNNNN
  int64_t step() const { return step_; }
  const float* params() const { return params_; }  // in parameter_layout(config())

 private:
  LoadedModel() = default;

  ModelConfig config_;
  std::string checkpoint_;
  int64_t step_ = 0;
  std::unique_ptr<Tokenizer> tokenizer_;
  Arena weights_;
  float* params_ = nullptr;
};

}  // namespace sc
