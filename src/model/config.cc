#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/file_util.h"
#include "core/json_reader.h"

namespace sc {
namespace {

constexpr std::string_view kGeluTanhName = "gelu_pytorch_tanh";
constexpr std::string_view kSiluName = "silu";

// The keys of docs/model.md's config table plus the MoE options.
constexpr std::string_view kKnownKeys[] = {
    "model_type",
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "rms_norm_eps",
    "rope_theta",
    "max_position_embeddings",
    "tie_word_embeddings",
    "hidden_act",
    "attn_output_multiplier",
    "attn_logit_softcapping",
    "sandwich_norm",
    "embedding_multiplier_scale",
    "output_multiplier_scale",
    "num_experts",
    "num_experts_per_tok",
    "moe_layer_frequency",
    "router_renormalize",
    "router_aux_loss_coef",
    "router_z_loss_coef",
    "capacity_factor",
    "num_local_experts",
    "training",
};

// Informational Hugging Face keys (docs/model.md): accepted and ignored, so a
// config.json written by transformers loads unchanged.
constexpr std::string_view kIgnoredHuggingFaceKeys[] = {
    "architectures",     "torch_dtype", "transformers_version", "bos_token_id",
    "eos_token_id",      "pad_token_id", "initializer_range",   "use_cache",
    "attention_bias",    "attention_dropout", "mlp_bias",       "rope_scaling",
};

// Config files are small; a larger one is a wrong path, not a config.
constexpr uintmax_t kMaxConfigFileBytes = 16u << 20;

// Longest strings kept from a config: a model type and an activation name.
constexpr size_t kMaxNameBytes = 256;

// The integer and float fields with their documented ranges (docs/model.md,
// "Bounds"); the JSON reader and validate() check the same ones.
struct IntegerField {
  std::string_view key;
  int64_t ModelConfig::*member;
  int64_t min, max;
};
constexpr IntegerField kIntegerFields[] = {
    {"vocab_size", &ModelConfig::vocab_size, 1, kMaxVocabSize},
    {"hidden_size", &ModelConfig::hidden_size, 1, kMaxHiddenSize},
    {"num_hidden_layers", &ModelConfig::num_hidden_layers, 1, kMaxLayers},
    {"num_attention_heads", &ModelConfig::num_attention_heads, 1, kMaxAttentionHeads},
    {"num_key_value_heads", &ModelConfig::num_key_value_heads, 1, kMaxAttentionHeads},
    {"head_dim", &ModelConfig::head_dim, 2, kMaxHeadDim},
    {"intermediate_size", &ModelConfig::intermediate_size, 1, kMaxIntermediateSize},
    {"max_position_embeddings", &ModelConfig::max_position_embeddings, 1, kMaxPositionEmbeddings},
    {"num_experts", &ModelConfig::num_experts, 0, kMaxExperts},
    {"num_experts_per_tok", &ModelConfig::num_experts_per_tok, 0, kMaxExperts},
    {"moe_layer_frequency", &ModelConfig::moe_layer_frequency, 1, kMaxLayers},
};

struct NumberField {
  std::string_view key;
  double ModelConfig::*member;
  double min, max;
};
constexpr NumberField kNumberFields[] = {
    {"rms_norm_eps", &ModelConfig::rms_norm_eps, 1e-12, 1.0},
    {"rope_theta", &ModelConfig::rope_theta, 1.0, 1e12},
    {"attn_output_multiplier", &ModelConfig::attn_output_multiplier, 1e-6, 1e6},
    {"attn_logit_softcapping", &ModelConfig::attn_logit_softcapping, 0.0, 1e6},  // 0: off
    {"embedding_multiplier_scale", &ModelConfig::embedding_multiplier_scale, 1e-6, 1e6},
    {"output_multiplier_scale", &ModelConfig::output_multiplier_scale, 1e-6, 1e6},
    {"router_aux_loss_coef", &ModelConfig::router_aux_loss_coef, 0.0, 1e3},
    {"router_z_loss_coef", &ModelConfig::router_z_loss_coef, 0.0, 1e3},
    {"capacity_factor", &ModelConfig::capacity_factor, 0.0, 1e3},  // 0: dropless
};

const IntegerField* integer_field(std::string_view key) {
  for (const IntegerField& f : kIntegerFields) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

const NumberField* number_field(std::string_view key) {
  for (const NumberField& f : kNumberFields) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

// Reads `key` into its member when present (absent or null keeps the
// default), checking type and range.
Status read_integer(const JsonReader& r, std::string_view key, ModelConfig* c, bool required = false) {
  const IntegerField* f = integer_field(key);
  if (!f) return Status::internal("no integer field '{}' in the config table", key);
  SC_ASSIGN_OR_RETURN(c->*f->member, required ? r.integer(key, f->min, f->max)
                                              : r.integer_or(key, c->*f->member, f->min, f->max));
  return Status();
}

Status read_number(const JsonReader& r, std::string_view key, ModelConfig* c) {
  const NumberField* f = number_field(key);
  if (!f) return Status::internal("no number field '{}' in the config table", key);
  SC_ASSIGN_OR_RETURN(c->*f->member, r.number_or(key, c->*f->member, f->min, f->max));
  return Status();
}

Status read_boolean(const JsonReader& r, std::string_view key, bool* out) {
  SC_ASSIGN_OR_RETURN(*out, r.boolean_or(key, *out));
  return Status();
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

// Rejects keys that are neither ours nor ignored HF keys; a near miss gets a
// suggestion, since a misspelled key would otherwise silently take a default.
Status check_keys(const nlohmann::json& object, const std::string& source) {
  for (const auto& item : object.items()) {
    const std::string& key = item.key();
    auto is_key = [&](std::string_view k) { return k == key; };
    if (std::any_of(std::begin(kKnownKeys), std::end(kKnownKeys), is_key)) continue;
    if (std::any_of(std::begin(kIgnoredHuggingFaceKeys), std::end(kIgnoredHuggingFaceKeys), is_key)) {
      continue;
    }
    std::string_view closest;
    size_t closest_distance = 3;  // suggest only within two edits
    for (std::string_view known : kKnownKeys) {
      if (key.size() > known.size() + 2) continue;  // too far already; keeps a huge key cheap
      size_t d = edit_distance(key, known);
      if (d < closest_distance) closest = known, closest_distance = d;
    }
    if (!closest.empty()) {
      return Status::invalid("{}: unknown key '{}' (did you mean '{}'?)", source, text_excerpt(key, 64), closest);
    }
    return Status::invalid("{}: unknown key '{}'", source, text_excerpt(key, 64));
  }
  return Status::ok_status();
}

Status parse_activation(const JsonReader& reader, const std::string& source, Activation* out) {
  SC_ASSIGN_OR_RETURN(const std::string name,
                      reader.string_or("hidden_act", std::string(activation_name(*out)), kMaxNameBytes));
  if (name == kGeluTanhName) {
    *out = Activation::kGeluTanh;
  } else if (name == kSiluName) {
    *out = Activation::kSilu;
  } else {
    return Status::invalid("{}: 'hidden_act' must be \"{}\" or \"{}\" (got \"{}\")", source, kGeluTanhName,
                           kSiluName, text_excerpt(name, 64));
  }
  return Status::ok_status();
}

// The shape keys; a config without them describes no model.
Status parse_shape(const JsonReader& r, const std::string& source, ModelConfig* c) {
  for (std::string_view key : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                               "intermediate_size", "max_position_embeddings"}) {
    SC_RETURN_IF_ERROR(read_integer(r, key, c, /*required=*/true));
  }
  c->num_key_value_heads = c->num_attention_heads;  // no GQA unless asked
  SC_RETURN_IF_ERROR(read_integer(r, "num_key_value_heads", c));

  if (r.has("head_dim")) {
    SC_RETURN_IF_ERROR(read_integer(r, "head_dim", c));
  } else {
    if (c->hidden_size % c->num_attention_heads != 0) {
      return Status::invalid(
          "{}: 'hidden_size' ({}) must be divisible by 'num_attention_heads' ({}) unless 'head_dim' is given",
          source, c->hidden_size, c->num_attention_heads);
    }
    c->head_dim = c->hidden_size / c->num_attention_heads;
  }
  return Status::ok_status();
}

Status parse_moe(const JsonReader& r, ModelConfig* c, const std::string& source) {
  // Mixtral's config.json calls it num_local_experts.
  if (r.has("num_local_experts") && r.has("num_experts")) {
    return Status::invalid("{}: give 'num_experts' or its alias 'num_local_experts', not both", source);
  }
  SC_RETURN_IF_ERROR(read_integer(r, "num_experts", c));
  SC_ASSIGN_OR_RETURN(c->num_experts, r.integer_or("num_local_experts", c->num_experts, 0, kMaxExperts));
  c->num_experts_per_tok = c->is_moe() ? std::min<int64_t>(2, c->num_experts) : 0;  // Mixtral's default top-2
  SC_RETURN_IF_ERROR(read_integer(r, "num_experts_per_tok", c));
  SC_RETURN_IF_ERROR(read_integer(r, "moe_layer_frequency", c));
  SC_RETURN_IF_ERROR(read_boolean(r, "router_renormalize", &c->router_renormalize));
  for (std::string_view key : {"router_aux_loss_coef", "router_z_loss_coef", "capacity_factor"}) {
    SC_RETURN_IF_ERROR(read_number(r, key, c));
  }
  return Status::ok_status();
}

Result<ModelConfig> parse_config(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) {
    return Status::invalid("{}: a model config must be a JSON object (got {})", source, describe_json(json));
  }
  SC_RETURN_IF_ERROR(check_keys(json, source));
  SC_ASSIGN_OR_RETURN(const JsonReader r, JsonReader::of(json, source));
  ModelConfig c;
  SC_ASSIGN_OR_RETURN(c.model_type, r.string_or("model_type", "", kMaxNameBytes));
  SC_RETURN_IF_ERROR(parse_shape(r, source, &c));
  SC_RETURN_IF_ERROR(read_number(r, "rms_norm_eps", &c));
  SC_RETURN_IF_ERROR(read_number(r, "rope_theta", &c));
  SC_RETURN_IF_ERROR(read_boolean(r, "tie_word_embeddings", &c.tie_word_embeddings));
  SC_RETURN_IF_ERROR(parse_activation(r, source, &c.hidden_act));

  c.attn_output_multiplier = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  for (std::string_view key : {"attn_output_multiplier", "attn_logit_softcapping", "embedding_multiplier_scale",
                               "output_multiplier_scale"}) {
    SC_RETURN_IF_ERROR(read_number(r, key, &c));  // softcapping null: off
  }
  SC_RETURN_IF_ERROR(read_boolean(r, "sandwich_norm", &c.sandwich_norm));
  SC_RETURN_IF_ERROR(parse_moe(r, &c, source));

  if (r.has("training")) {
    SC_ASSIGN_OR_RETURN(const JsonReader training, r.object("training"));
    c.training = training.json();
  }
  SC_RETURN_IF_ERROR(c.validate().with_context(source));
  return c;
}

// A rough parameter count in floating point, safe from int64 overflow, to
// reject absurd sizes before anything multiplies them in integers.
double approximate_parameters(const ModelConfig& c) {
  double h = static_cast<double>(c.hidden_size);
  double attention = h * static_cast<double>(c.head_dim) *
                     static_cast<double>(2 * c.num_attention_heads + 2 * c.num_key_value_heads);
  double experts = static_cast<double>(std::max<int64_t>(c.num_experts, 1));
  double ffn = experts * (3.0 * h * static_cast<double>(c.intermediate_size) + h);
  return 2.0 * static_cast<double>(c.vocab_size) * h +
         static_cast<double>(c.num_hidden_layers) * (attention + ffn + 4.0 * h);
}

// Tensors in parameter_layout(c), counted without building it.
int64_t layout_tensors(const ModelConfig& c) {
  int64_t tensors = c.tie_word_embeddings ? 2 : 3;  // embedding, final norm, lm_head
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    tensors += 1 + 4 + (c.sandwich_norm ? 3 : 1);  // input norm, q/k/v/o, the middle norms
    tensors += c.is_moe_layer(l) ? 1 + 3 * c.num_experts : 3;
  }
  return tensors;
}

}  // namespace

std::string_view activation_name(Activation activation) {
  switch (activation) {
    case Activation::kGeluTanh: return kGeluTanhName;
    case Activation::kSilu: return kSiluName;
  }
  return "unknown";
}

Result<ModelConfig> ModelConfig::from_json(const nlohmann::json& json, const std::string& source) {
  return parse_config(json, source);
}

Result<ModelConfig> ModelConfig::load(const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!error && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    return Status::invalid("{}: not a regular file", path);
  }
  const uintmax_t bytes = std::filesystem::file_size(path, error);
  if (!error && bytes > kMaxConfigFileBytes) {
    return Status::invalid("{}: {} bytes, more than the {} a config.json may have", path, bytes, kMaxConfigFileBytes);
  }
  SC_ASSIGN_OR_RETURN(const std::string text, read_file(path));
  SC_ASSIGN_OR_RETURN(const nlohmann::json json, parse_json(text, path));
  return from_json(json, path);
}

Result<ModelConfig> ModelConfig::resolve(const std::string& preset_or_path) {
  std::vector<std::string> names = preset_names();
  if (std::find(names.begin(), names.end(), preset_or_path) != names.end()) return preset(preset_or_path);
  std::error_code error;
  if (std::filesystem::exists(preset_or_path, error)) return load(preset_or_path);
  return Status::not_found("'{}' is neither a model preset ({}) nor an existing config file", preset_or_path,
                           fmt::join(names, ", "));
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json json = {
      {"model_type", model_type},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"head_dim", head_dim},
      {"intermediate_size", intermediate_size},
      {"rms_norm_eps", rms_norm_eps},
      {"rope_theta", rope_theta},
      {"max_position_embeddings", max_position_embeddings},
      {"tie_word_embeddings", tie_word_embeddings},
      {"hidden_act", std::string(activation_name(hidden_act))},
      {"attn_output_multiplier", attn_output_multiplier},
      {"sandwich_norm", sandwich_norm},
      {"embedding_multiplier_scale", embedding_multiplier_scale},
      {"output_multiplier_scale", output_multiplier_scale},
      {"num_experts", num_experts},
      {"num_experts_per_tok", num_experts_per_tok},
      {"moe_layer_frequency", moe_layer_frequency},
      {"router_renormalize", router_renormalize},
      {"router_aux_loss_coef", router_aux_loss_coef},
      {"router_z_loss_coef", router_z_loss_coef},
      {"capacity_factor", capacity_factor},
  };
  // Off is written as null, as Gemma-2's config.json does: a Hugging Face
  // reader would divide by a 0.
  json["attn_logit_softcapping"] =
      attn_logit_softcapping > 0 ? nlohmann::json(attn_logit_softcapping) : nlohmann::json(nullptr);
  if (!training.is_null()) json["training"] = training;
  return json;
}

Status ModelConfig::validate() const {
  for (const IntegerField& f : kIntegerFields) {
    const int64_t value = this->*f.member;
    if (value < f.min || value > f.max) {
      return Status::invalid("'{}' must be an integer in [{}, {}] (got {})", f.key, f.min, f.max, value);
    }
  }
  if (num_attention_heads % num_key_value_heads != 0) {
    return Status::invalid("'num_attention_heads' ({}) must be divisible by 'num_key_value_heads' ({})",
                           num_attention_heads, num_key_value_heads);
  }
  if (head_dim % 2 != 0) {
    return Status::invalid("'head_dim' ({}) must be even: RoPE rotates pairs (i, i + head_dim/2)", head_dim);
  }
  for (const NumberField& f : kNumberFields) {
    const double value = this->*f.member;
    if (!std::isfinite(value) || value < f.min || value > f.max) {
      return Status::invalid("'{}' must be a number in [{}, {}] (got {})", f.key, f.min, f.max, value);
    }
  }

  if (num_experts_per_tok > std::max<int64_t>(num_experts, 1)) {
    return Status::invalid("'num_experts_per_tok' ({}) must not exceed 'num_experts' ({})", num_experts_per_tok,
                           num_experts);
  }
  if (is_moe() && num_experts_per_tok < 1) {
    return Status::invalid("'num_experts_per_tok' must be at least 1 when 'num_experts' ({}) > 1", num_experts);
  }
  if (moe_layer_frequency != 1 && !is_moe()) {
    return Status::invalid("'moe_layer_frequency' ({}) sets an MoE layer pattern, but 'num_experts' ({}) makes every "
                           "layer dense", moe_layer_frequency, num_experts);
  }
  if (is_moe() && moe_layer_frequency > num_hidden_layers && num_hidden_layers > 1) {
    return Status::invalid("'moe_layer_frequency' ({}) exceeds 'num_hidden_layers' ({}): only layer 0 would be MoE",
                           moe_layer_frequency, num_hidden_layers);
  }

  if (!training.is_null() && !training.is_object()) {
    return Status::invalid("'training' must be an object (got {})", describe_json(training));
  }
  const double parameters = approximate_parameters(*this);
  if (parameters > kMaxParameters) {
    return Status::invalid("the sizes give about {:.3g} parameters, more than the {:.0e} supported; check "
                           "'vocab_size', 'hidden_size', 'intermediate_size' and 'num_experts'",
                           parameters, kMaxParameters);
  }
  const int64_t tensors = layout_tensors(*this);
  if (tensors > kMaxLayoutTensors) {
    return Status::invalid("the model has {} tensors, more than the {} supported; check 'num_hidden_layers' and "
                           "'num_experts'", tensors, kMaxLayoutTensors);
  }
  return Status::ok_status();
}

}  // namespace sc
