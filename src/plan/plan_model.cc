#include "plan/plan_model.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "plan/input_ranges.h"

namespace sc::plan {

namespace {
// A gated-MLP model with modern kernels (the PlanModel defaults), named.
PlanModel gated_model(std::string name, ModelConfig config, int64_t seq_len) {
  PlanModel m;
  m.name = std::move(name);
  m.mlp_width = config.intermediate_size;
  m.config = std::move(config);
  m.default_seq_len = seq_len;
  return m;
}
}  // namespace

// A GPT-style model of Narayanan et al. 2021 (arXiv:2104.04473), Table 1:
// vocabulary 51,200, sequence 2,048, learned position embeddings (2,048 x H,
// left out: under 0.02% of the weights), tied input/output embeddings,
// multi-head attention, GELU MLP of 4H, dropout, attention without a fused
// kernel (2021).
Result<PlanModel> megatron_gpt_model(const std::string& name, int64_t layers, int64_t hidden, int64_t heads) {
  const int64_t equivalent_gated_width = static_cast<int64_t>(std::llround(8.0 * hidden / 3.0));
  nlohmann::json json = {
      {"model_type", "gpt"},
      {"vocab_size", 51200},
      {"hidden_size", hidden},
      {"num_hidden_layers", layers},
      {"num_attention_heads", heads},
      {"num_key_value_heads", heads},
      {"intermediate_size", equivalent_gated_width},
      {"max_position_embeddings", 2048},
      {"tie_word_embeddings", true},
      {"hidden_act", "gelu_pytorch_tanh"},
  };
  SC_ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::from_json(json, "preset '" + name + "'"));
  PlanModel m;
  m.name = name;
  m.config = config;
  m.gated_mlp = false;
  m.mlp_width = 4 * hidden;
  m.flash_attention = false;
  m.dropout = true;
  m.rotary = false;
  m.default_seq_len = 2048;
  return m;
}

namespace {

// The Llama 3.1 family, from meta-llama/Llama-3.1-{8B,70B,405B} config.json:
// vocabulary 128,256, 8 key-value heads, untied embeddings, SwiGLU, RoPE.
Result<PlanModel> llama3_model(const std::string& name, int64_t layers, int64_t hidden, int64_t heads,
                               int64_t ffn) {
  nlohmann::json json = {
      {"model_type", "llama"},
      {"vocab_size", 128256},
      {"hidden_size", hidden},
      {"num_hidden_layers", layers},
      {"num_attention_heads", heads},
      {"num_key_value_heads", 8},
      {"intermediate_size", ffn},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 500000.0},
      {"max_position_embeddings", 131072},
      {"tie_word_embeddings", false},
      {"hidden_act", "silu"},
  };
  SC_ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::from_json(json, "preset '" + name + "'"));
  return gated_model(name, config, 8192);
}

// Nemotron-4 340B (arXiv:2406.11704; nvidia/Nemotron-4-340B-Base config):
// 96 layers, hidden 18,432, 96 query and 8 key-value heads of 192, a
// squared-ReLU MLP of 73,728 (two matrices: written as a gated width of 2/3
// of it, like the GPT presets), vocabulary 256,000, untied, RoPE, no dropout.
Result<PlanModel> nemotron4_340b() {
  nlohmann::json json = {
      {"model_type", "nemotron"},
      {"vocab_size", 256000},
      {"hidden_size", 18432},
      {"num_hidden_layers", 96},
      {"num_attention_heads", 96},
      {"num_key_value_heads", 8},
      {"intermediate_size", 73728 * 2 / 3},
      {"max_position_embeddings", 4096},
      {"tie_word_embeddings", false},
      {"hidden_act", "gelu_pytorch_tanh"},
  };
  SC_ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::from_json(json, "preset 'nemotron4-340b'"));
  PlanModel m = gated_model("nemotron4-340b", config, 4096);
  m.gated_mlp = false;
  m.mlp_width = 73728;
  return m;
}

// A Grok-style MoE about 10x Grok-1 (docs/plan.md): twice the width and
// the expert width, 80 layers, 16 experts with 2 active: ~3.1T parameters,
// ~0.42T active per token.
Result<PlanModel> grok_10x() {
  SC_ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::preset("grok-1"));
  config.model_type = "grok-10x";
  config.hidden_size = 12288;
  config.num_hidden_layers = 80;
  config.num_attention_heads = 96;
  config.num_key_value_heads = 16;
  config.head_dim = 128;
  config.intermediate_size = 65536;
  config.num_experts = 16;
  config.num_experts_per_tok = 2;
  return gated_model("grok-10x", config, 8192);
}

}  // namespace

std::vector<std::string> plan_model_preset_names() {
  std::vector<std::string> names = {"gpt3-175b",   "megatron-1t",    "llama3-8b", "llama3-70b",
                                    "llama3-405b", "nemotron4-340b", "grok-10x"};
  for (const auto& n : ModelConfig::preset_names()) names.push_back(n);
  return names;
}

Result<PlanModel> resolve_plan_model(const std::string& preset_or_path) {
  if (preset_or_path == "gpt3-175b") return megatron_gpt_model("gpt3-175b", 96, 12288, 96);
  if (preset_or_path == "megatron-1t") return megatron_gpt_model("megatron-1t", 128, 25600, 160);
  if (preset_or_path == "llama3-8b") return llama3_model(preset_or_path, 32, 4096, 32, 14336);
  if (preset_or_path == "llama3-70b") return llama3_model(preset_or_path, 80, 8192, 64, 28672);
  if (preset_or_path == "llama3-405b") return llama3_model(preset_or_path, 126, 16384, 128, 53248);
  if (preset_or_path == "nemotron4-340b") return nemotron4_340b();
  if (preset_or_path == "grok-10x") return grok_10x();
  auto config = ModelConfig::resolve(preset_or_path);
  if (!config.ok()) {
    if (config.status().code() != StatusCode::kNotFound) return config.status();
    std::string known;
    for (const auto& n : plan_model_preset_names()) known += (known.empty() ? "" : ", ") + n;
    return Status::not_found("unknown model {} (presets: {}; or a config.json path)", quote_input(preset_or_path), known);
  }
  const int64_t seq_len = config->max_position_embeddings > 0 ? config->max_position_embeddings : 4096;
  return gated_model(preset_or_path, *config, seq_len);
}

}  // namespace sc::plan
