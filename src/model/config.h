// ModelConfig: the shape and options of a Grok-style decoder-only
// transformer, read from a Hugging Face style config.json or taken from a
// named preset. docs/model.md defines every key; Llama and Mixtral are the
// same model with options off.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace sc {

// The gate activation of the gated feed-forward: act(f Wgate^T) * (f Wup^T).
enum class Activation {
  kGeluTanh,  // "gelu_pytorch_tanh" (Grok-1, Gemma)
  kSilu,      // "silu" (SwiGLU: Llama, Mixtral)
};

// The config.json spelling of an activation.
std::string_view activation_name(Activation activation);

// Upper bounds of the sizes (docs/model.md, "Bounds"): above every published
// model, and low enough that every product the code forms of them (parameter
// counts, the KV cache L·T·Hkv·D, activations per token) fits in 64 bits with
// room to spare. Memory is checked separately, before anything is allocated.
inline constexpr int64_t kMaxVocabSize = int64_t{1} << 24;           // 16,777,216
inline constexpr int64_t kMaxHiddenSize = int64_t{1} << 17;          // 131,072
inline constexpr int64_t kMaxLayers = 1024;
inline constexpr int64_t kMaxAttentionHeads = 1024;
inline constexpr int64_t kMaxHeadDim = 4096;
inline constexpr int64_t kMaxIntermediateSize = int64_t{1} << 20;    // 1,048,576
inline constexpr int64_t kMaxPositionEmbeddings = int64_t{1} << 24;  // 16,777,216
inline constexpr int64_t kMaxExperts = 1024;
// Of the whole model: parameters, and tensors in the layout (about
// num_hidden_layers x 3 num_experts for an MoE model).
inline constexpr double kMaxParameters = 1e15;
inline constexpr int64_t kMaxLayoutTensors = int64_t{1} << 20;       // 1,048,576

struct ModelConfig {
  std::string model_type;           // informational: "grok-1", "llama", "mixtral", ...
  int64_t vocab_size = 0;           // V
  int64_t hidden_size = 0;          // H
  int64_t num_hidden_layers = 0;    // L
  int64_t num_attention_heads = 0;  // Hq
  int64_t num_key_value_heads = 0;  // Hkv, divides Hq (default Hq)
  int64_t head_dim = 0;             // D (default H / Hq)
  int64_t intermediate_size = 0;    // F, per expert for MoE
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;  // Llama's default; Grok-1 ties
  Activation hidden_act = Activation::kSilu;
  double attn_output_multiplier = 0.0;      // scale of q.k (default 1/sqrt(D))
  double attn_logit_softcapping = 0.0;      // c of c*tanh(s/c); 0 = off (null in JSON)
  bool sandwich_norm = false;               // RMSNorm after attention and after the FFN
  double embedding_multiplier_scale = 1.0;  // embeddings are multiplied by it
  double output_multiplier_scale = 1.0;     // logits are multiplied by it
  int64_t num_experts = 0;                  // 0 or 1: dense FFN
  int64_t num_experts_per_tok = 0;          // top-k (default 2 when MoE, else 0)
  // Every moe_layer_frequency-th layer is MoE, starting at layer 0
  // (layer l is MoE iff l % moe_layer_frequency == 0), as Megatron-LM's
  // --moe-layer-freq; 1 means every layer.
  int64_t moe_layer_frequency = 1;
  // Whether the top-k router weights are renormalized to sum to 1 (Mixtral)
  // or left as the softmax over all experts (Grok-1).
  bool router_renormalize = false;
  // Auxiliary router losses (docs/model.md): load balance (Switch/Mixtral) and z-loss (ST-MoE).
  double router_aux_loss_coef = 0.01;
  double router_z_loss_coef = 0.001;
  // 0: dropless dispatch; c > 0: each expert keeps at most ceil(c·N·k/E) assignments.
  double capacity_factor = 0.0;
  // Optional defaults for `supercluster train` flags, kept raw for the
  // trainer to read; null when absent.
  nlohmann::json training;

  bool operator==(const ModelConfig&) const = default;

  bool is_moe() const { return num_experts > 1; }
  bool is_moe_layer(int64_t layer) const { return is_moe() && layer % moe_layer_frequency == 0; }

  // Parses and validates a config object. `source` (a file name, or
  // "preset 'grok-1'") begins every error message. Defaults are filled in,
  // so the result holds concrete values for every field.
  static Result<ModelConfig> from_json(const nlohmann::json& json, const std::string& source);
  // Reads and parses a config.json file.
  static Result<ModelConfig> load(const std::string& path);
  // A named built-in config; see preset_names().
  static Result<ModelConfig> preset(const std::string& name);
  // A preset if `preset_or_path` names one, else a config.json path.
  static Result<ModelConfig> resolve(const std::string& preset_or_path);
  static std::vector<std::string> preset_names();

  // Every field, explicitly; from_json(to_json()) gives back *this.
  nlohmann::json to_json() const;

  // Checks every field against its range (docs/model.md, "Bounds") and the
  // sizes and options against each other. Messages name the field and the
  // range (e.g. "'hidden_size' must be an integer in [1, 131072] (got 0)")
  // but not the source.
  Status validate() const;
};

}  // namespace sc
