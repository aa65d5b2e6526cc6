// The model's inference path (docs/model.md, "Inference"): prefill of a batch
// of prompts in one forward and decode of one token for each of a batch of
// sequences, each at its own position, against a KV cache. Both run
// model/layer.h, the layer training runs, with the same kernels; MoE layers
// never drop tokens (capacity is a training device). No gradients.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/arena.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "model/config.h"
#include "model/layer.h"
#include "model/model.h"
#include "model/packed_weights.h"

namespace sc {

// Keys (after RoPE) and values of `slots` sequences of up to `context`
// positions, per layer, allocated once: keys(l) and values(l) are
// [slots, context, Hkv·D]. Which slot holds which sequence, and how far, is
// the caller's bookkeeping.
class KvCache {
 public:
  static Result<KvCache> create(const ModelConfig& config, size_t slots, size_t context);
  KvCache() = default;

  size_t layers() const { return layers_; }
  size_t slots() const { return slots_; }
  size_t context() const { return context_; }
  size_t row_floats() const { return row_floats_; }  // Hkv·D
  float* keys(size_t layer) const { return keys_ + layer * slots_ * context_ * row_floats_; }
  float* values(size_t layer) const { return values_ + layer * slots_ * context_ * row_floats_; }

 private:
  Arena arena_;
  size_t layers_ = 0, slots_ = 0, context_ = 0, row_floats_ = 0;
  float* keys_ = nullptr;
  float* values_ = nullptr;
};

// Token rows per forward that generate and serve size Inference for: a
// longer prompt is prefilled in several forwards of this many, which bounds
// the activation buffers without costing a long prompt much.
inline constexpr size_t kPrefillTokensPerForward = 256;

class Inference {
 public:
  // Buffers for forwards of up to max_tokens token rows returning up to
  // max_sequences logits rows, allocated once. params is a parameter buffer
  // in parameter_layout(config), not owned and only read (a loaded
  // checkpoint, or a trainer's live weights); it must outlive this object.
  // `weights`: the format the matrices are multiplied in; bf16 and int8 are
  // packed from params once, here (model/packed_weights.h).
  static Result<std::unique_ptr<Inference>> create(const ModelConfig& config, const float* params,
                                                   size_t max_tokens, size_t max_sequences, ThreadPool& pool,
                                                   WeightFormat weights = WeightFormat::kF32);

  const ModelConfig& config() const { return config_; }
  WeightFormat weight_format() const { return packed_.format(); }
  size_t matrix_bytes() const { return packed_.matrix_bytes(); }
  size_t max_tokens() const { return max_tokens_; }
  size_t max_sequences() const { return max_sequences_; }

  // Tokens of one sequence going to positions position, position + 1, ...
  // of cache slot `slot` (a prompt, or the next part of one).
  struct Sequence {
    std::span<const uint32_t> tokens;
    size_t slot = 0;
    size_t position = 0;
  };

  // Runs the sequences through the model, in one forward when their tokens
  // fit max_tokens (else in consecutive forwards of up to max_tokens rows, a
  // long prompt split between them), storing every token's keys and values
  // in `cache`. A slot's positions before `position` must be in the cache
  // already; slots must differ. Returns logits [sequences.size(), V] of each
  // sequence's last token, after the output multiplier; valid until the next
  // call.
  Result<const float*> prefill(KvCache& cache, std::span<const Sequence> sequences);

  // One token per sequence: tokens[i] at positions[i] of slots[i] (slots
  // differ; positions before it in the cache), in forwards of at most
  // kRowwiseMaxRows rows (kernels/linear.h), so a sequence's logits are the
  // same bits whatever else is in the batch. Returns logits [tokens.size(),
  // V] after the output multiplier; valid until the next call.
  Result<const float*> decode(KvCache& cache, std::span<const uint32_t> tokens, std::span<const size_t> slots,
                              std::span<const size_t> positions);

 private:
  Inference(const ModelConfig& config, size_t max_tokens, size_t max_sequences, ThreadPool& pool)
      : config_(config), max_tokens_(max_tokens), max_sequences_(max_sequences), pool_(pool) {}
  Status check(const KvCache& cache, std::span<const Sequence> sequences) const;
  // prefill's packing of sequences into forwards of up to rows_per_forward rows.
  Result<const float*> run(KvCache& cache, std::span<const Sequence> sequences, size_t rows_per_forward);
  // One forward over the rows_ tokens in segments_[0, num_segments_); the
  // logits of rows last_rows_[0, num_last_) go to logits [num_last_, V].
  Status forward(KvCache& cache, float* logits);

  ModelConfig config_;
  size_t max_tokens_, max_sequences_;
  ThreadPool& pool_;
  ModelWeights w_;
  PackedWeights packed_;
  GatedActivation act_ = GatedActivation::kGeluTanh;
  AttentionShape attention_shape_;  // heads, multiplier, soft-cap; B and T come from the cache
  Arena arena_;
  LayerActivations a_{};  // one set, reused by every layer
  MoeStats moe_stats_;
  std::vector<Sequence> one_token_;  // decode's sequences, capacity max_sequences
  // The forward being assembled.
  size_t rows_ = 0, num_segments_ = 0, num_last_ = 0;
  uint32_t* tokens_ = nullptr;             // [max_tokens]
  size_t* positions_ = nullptr;            // [max_tokens]
  AttentionSegment* segments_ = nullptr;   // [max_tokens]
  size_t* last_rows_ = nullptr;            // [max_sequences]
  float *last_x_, *final_normed_, *final_rstd_, *logits_;
  float *rope_cos_, *rope_sin_, *attn_scratch_;
};

}  // namespace sc
