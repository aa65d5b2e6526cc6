// The one definition of a model's parameter layout, parameter counts, FLOPs
// per token and training memory. The model, the trainer (MFU), the planner
// and the benchmarks all take these numbers from here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace sc {

// Every tensor starts at a multiple of 16 floats: 64 bytes, one AVX-512
// register and one cache line.
inline constexpr int64_t kParameterAlignmentFloats = 16;

enum class TensorRole {
  kEmbedding,  // E [V, H]
  kNorm,       // RMSNorm weights [H]
  kAttention,  // Wq, Wk, Wv, Wo
  kFfn,        // dense Wgate, Wup, Wdown
  kRouter,     // MoE router [E, H]
  kExpert,     // MoE expert w1 (gate), w3 (up), w2 (down)
  kOutput,     // lm_head [V, H], untied only
};

// One named view into the single fp32 parameter buffer.
struct TensorSpec {
  std::string name;            // Hugging Face name, e.g. "model.layers.3.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // [out_features, in_features] for linear weights
  int64_t offset = 0;          // in floats into the parameter buffer, a multiple of 16
  bool is_norm = false;        // 1-D norm weight: no weight decay
  TensorRole role = TensorRole::kEmbedding;
  int64_t layer = -1;   // -1 outside the layers
  int64_t expert = -1;  // -1 unless an MoE expert weight

  int64_t numel() const;
};

// The parameters in buffer order, with docs/model.md's names: the embedding;
// per layer input_layernorm, q/k/v/o_proj, the norms (Gemma-2 names when
// sandwich_norm), then mlp.gate/up/down_proj, or on MoE layers the Mixtral
// block_sparse_moe.gate and experts.{e}.w1/w3/w2; model.norm; lm_head last
// when untied.
std::vector<TensorSpec> parameter_layout(const ModelConfig& config);

// Floats the parameter buffer needs: the end of the last tensor rounded up to
// kParameterAlignmentFloats (so it counts alignment padding).
int64_t parameter_buffer_floats(const std::vector<TensorSpec>& layout);

struct LayerParameterCounts {
  bool is_moe = false;
  int64_t attention = 0;   // Wq, Wk, Wv, Wo
  int64_t norms = 0;       // 2 norms, 4 with sandwich_norm
  int64_t ffn = 0;         // the dense MLP, or every expert of an MoE layer
  int64_t router = 0;      // MoE layers only
  int64_t active_ffn = 0;  // FFN weights one token uses: the MLP, or k experts

  int64_t total() const { return attention + norms + ffn + router; }
  int64_t active() const { return attention + norms + router + active_ffn; }
};

// Parameter counts, summed from parameter_layout(); no alignment padding.
struct ParameterCounts {
  int64_t total = 0;
  int64_t active = 0;      // used by one token: total minus (E - k) experts per MoE layer
  int64_t embedding = 0;   // E
  int64_t output = 0;      // lm_head; 0 when tied
  int64_t final_norm = 0;  // model.norm
  int64_t attention = 0;   // all layers
  int64_t norms = 0;       // all norm weights, final norm included
  int64_t ffn = 0;         // dense MLPs and all experts, all layers
  int64_t router = 0;      // all layers
  // Weights one token multiplies by: attention, router and active FFN of
  // every layer plus the V x H output projection (E itself when tied). The
  // embedding lookup and the norms are not matmuls.
  int64_t active_matmul = 0;
  int64_t buffer_floats = 0;  // parameter buffer size, padding included
  std::vector<LayerParameterCounts> layers;
};

ParameterCounts count_parameters(const ModelConfig& config);

// FLOPs per token of one sequence of `seq_len` tokens (a multiply-add is 2).
struct FlopsPerToken {
  int64_t forward_matmul = 0;     // 2 x active_matmul parameters
  int64_t forward_attention = 0;  // 4 L T Hq D: QK^T and PV over the full T x T
  int64_t forward = 0;            // forward_matmul + forward_attention
  int64_t training = 0;           // 3 x forward: backward is twice the forward
};

// Attention is counted over the full T x T score matrix, the convention of
// the PaLM paper's MFU (6N + 12 L H Q T per token for training), so figures
// compare with published MFU. A causal kernel does about half of that work;
// counting it would halve forward_attention.
FlopsPerToken flops_per_token(const ModelConfig& config, int64_t seq_len);

// Training FLOPs per token: the numerator of MFU everywhere in supercluster.
int64_t model_flops_per_token(const ModelConfig& config, int64_t seq_len);

// fp32 training with AdamW on one rank holding the whole model (no sharding;
// the planner divides these for tensor, expert and ZeRO parallelism).
struct MemoryEstimate {
  int64_t weights_bytes = 0;      // 4 per float of the parameter buffer
  int64_t grads_bytes = 0;        // 4 per float
  int64_t optimizer_bytes = 0;    // 8 per float: AdamW first and second moments
  int64_t activations_bytes = 0;  // saved for backward, logits included
  int64_t logits_bytes = 0;       // of which: B x T x V floats for the loss
  int64_t total_bytes = 0;
};

// Floats one token keeps for the backward pass, over all layers plus the
// final norm; logits not included. The list is in counts.cc.
int64_t activation_floats_per_token(const ModelConfig& config);

MemoryEstimate estimate_training_memory(const ModelConfig& config, int64_t batch, int64_t seq_len);

// Tokens of one training micro-batch (batch x seq_len), at most. With the
// config's bounds, every activation size the model forms of them fits in 64
// bits; past it, only an estimate in floating point would.
inline constexpr int64_t kMaxTokensPerMicroBatch = int64_t{1} << 24;

// Whether `config` can train on micro-batches of `batch` sequences of
// `seq_len` tokens: both positive, seq_len within max_position_embeddings, at
// most kMaxTokensPerMicroBatch tokens, and a training memory (estimated in
// floating point) that 64-bit sizes can hold. estimate_training_memory()
// and Model::create() may then compute in integers.
Status check_training_shape(const ModelConfig& config, int64_t batch, int64_t seq_len);

// Tensors with the same name up to layer and expert index, for tables:
// "model.layers.{l}.block_sparse_moe.experts.{e}.w1.weight" [F, H] x 512.
struct TensorGroup {
  std::string name_pattern;
  std::vector<int64_t> shape;
  int64_t count = 0;       // tensors in the group
  int64_t parameters = 0;  // count x elements
};

std::vector<TensorGroup> group_tensors(const std::vector<TensorSpec>& layout);

// Everything above for `train --dry-run` and the planner: parameters,
// FLOPs per token, memory for batch x seq_len, and the tensor groups.
nlohmann::json counts_report(const ModelConfig& config, int64_t batch, int64_t seq_len);

// The same report as aligned text for a person.
std::string format_counts_report(const ModelConfig& config, int64_t batch, int64_t seq_len);

}  // namespace sc
