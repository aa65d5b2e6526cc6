// Built-in model configs. Each is written as the config.json it stands for
// and goes through ModelConfig::from_json, so a preset is checked exactly
// like a file.
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace sc {
namespace {

using Json = nlohmann::json;

// Grok-1 as released by xAI (github.com/xai-org/grok-1, run.py and model.py):
// emb_size 48*128, widening_factor 8 -> ffn 32768, 48 query / 8 kv heads of
// 128, 64 layers, vocab 128*1024, sequence_len 8192, 8 experts top-2 without
// renormalization, attention logits capped at 30*tanh(s/30), RMSNorm eps
// 1e-5, sandwich norms, tied embeddings, and the released multipliers.
Json grok_1() {
  return {
      {"model_type", "grok-1"},
      {"vocab_size", 131072},
      {"hidden_size", 6144},
      {"num_hidden_layers", 64},
      {"num_attention_heads", 48},
      {"num_key_value_heads", 8},
      {"head_dim", 128},
      {"intermediate_size", 32768},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 10000.0},
      {"max_position_embeddings", 8192},
      {"tie_word_embeddings", true},
      {"hidden_act", "gelu_pytorch_tanh"},
      {"attn_output_multiplier", 0.08838834764831845},
      {"attn_logit_softcapping", 30.0},
      {"sandwich_norm", true},
      {"embedding_multiplier_scale", 78.38367176906169},
      {"output_multiplier_scale", 0.5773502691896257},
      {"num_experts", 8},
      {"num_experts_per_tok", 2},
      {"router_renormalize", false},
  };
}

// Our own small dense model with every Grok-1 option on (sandwich norms,
// softcap, multipliers, GQA 3:1, tied), sized to train on a 2-core CPU in
// about ten minutes.
Json grok_mini() {
  return {
      {"model_type", "grok-1"},
      {"vocab_size", 8192},
      {"hidden_size", 384},
      {"num_hidden_layers", 6},
      {"num_attention_heads", 6},
      {"num_key_value_heads", 2},
      {"head_dim", 64},
      {"intermediate_size", 1024},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 10000.0},
      {"max_position_embeddings", 1024},
      {"tie_word_embeddings", true},
      {"hidden_act", "gelu_pytorch_tanh"},
      {"attn_output_multiplier", 0.125},  // 1/sqrt(64)
      {"attn_logit_softcapping", 30.0},
      {"sandwich_norm", true},
      {"embedding_multiplier_scale", 78.38367176906169},
      {"output_multiplier_scale", 0.5773502691896257},
      {"num_experts", 0},
  };
}

// grok-mini with a Grok-1 style MoE FFN: 4 experts of half the width, top-2,
// so the active FFN per token equals grok-mini's.
Json grok_mini_moe() {
  Json json = grok_mini();
  json["intermediate_size"] = 512;
  json["num_experts"] = 4;
  json["num_experts_per_tok"] = 2;
  json["router_renormalize"] = false;
  return json;
}

// Our own small Llama-style model, grok-mini's shape with every Grok option
// off: SwiGLU, no sandwich, no softcap, multipliers 1, untied.
Json llama_mini() {
  Json json = grok_mini();
  json["model_type"] = "llama";
  json["tie_word_embeddings"] = false;
  json["hidden_act"] = "silu";
  json["attn_logit_softcapping"] = nullptr;
  json["sandwich_norm"] = false;
  json["embedding_multiplier_scale"] = 1.0;
  json["output_multiplier_scale"] = 1.0;
  return json;
}

// Llama 2 7B, from meta-llama/Llama-2-7b-hf config.json.
Json llama2_7b() {
  return {
      {"model_type", "llama"},
      {"vocab_size", 32000},
      {"hidden_size", 4096},
      {"num_hidden_layers", 32},
      {"num_attention_heads", 32},
      {"num_key_value_heads", 32},
      {"intermediate_size", 11008},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 10000.0},
      {"max_position_embeddings", 4096},
      {"tie_word_embeddings", false},
      {"hidden_act", "silu"},
  };
}

// A GPT-2 small (124M) sized model in our architecture: GPT-2's vocab padded
// to 50304 (as llm.c does), 12 layers of 768 with 12 heads, context 1024, and
// a gated FFN of width 2048, whose 3*768*2048 weights equal those of GPT-2's
// 768 -> 3072 -> 768 MLP. Tied like GPT-2; model_type "llama" because
// transformers' LlamaConfig describes this block exactly.
Json gpt2_124m() {
  return {
      {"model_type", "llama"},
      {"vocab_size", 50304},
      {"hidden_size", 768},
      {"num_hidden_layers", 12},
      {"num_attention_heads", 12},
      {"num_key_value_heads", 12},
      {"head_dim", 64},
      {"intermediate_size", 2048},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 10000.0},
      {"max_position_embeddings", 1024},
      {"tie_word_embeddings", true},
      {"hidden_act", "gelu_pytorch_tanh"},
      {"attn_logit_softcapping", nullptr},
      {"sandwich_norm", false},
      {"embedding_multiplier_scale", 1.0},
      {"output_multiplier_scale", 1.0},
  };
}

// Mixtral 8x7B, from mistralai/Mixtral-8x7B-v0.1 config.json
// (num_local_experts 8, top-2 with renormalized weights, rope_theta 1e6).
Json mixtral_8x7b() {
  return {
      {"model_type", "mixtral"},
      {"vocab_size", 32000},
      {"hidden_size", 4096},
      {"num_hidden_layers", 32},
      {"num_attention_heads", 32},
      {"num_key_value_heads", 8},
      {"intermediate_size", 14336},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 1e6},
      {"max_position_embeddings", 32768},
      {"tie_word_embeddings", false},
      {"hidden_act", "silu"},
      {"num_experts", 8},
      {"num_experts_per_tok", 2},
      {"router_renormalize", true},
  };
}

const std::vector<std::pair<std::string, Json (*)()>>& presets() {
  static const std::vector<std::pair<std::string, Json (*)()>> table = {
      {"grok-1", grok_1},         {"grok-mini", grok_mini},   {"grok-mini-moe", grok_mini_moe},
      {"llama-mini", llama_mini}, {"llama2-7b", llama2_7b},   {"gpt2-124m", gpt2_124m},
      {"mixtral-8x7b", mixtral_8x7b},
  };
  return table;
}

}  // namespace

std::vector<std::string> ModelConfig::preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, make] : presets()) names.push_back(name);
  return names;
}

Result<ModelConfig> ModelConfig::preset(const std::string& name) {
  for (const auto& [preset_name, make] : presets()) {
    if (preset_name == name) return from_json(make(), "preset '" + name + "'");
  }
  std::string known;
  for (const auto& [preset_name, make] : presets()) known += (known.empty() ? "" : ", ") + preset_name;
  return Status::not_found("unknown model preset '{}' (presets: {})", name, known);
}

}  // namespace sc
