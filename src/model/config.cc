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

// Above this many parameters the int64 counts and float offsets downstream
// are no longer trustworthy; a config this large is a typo.
constexpr double kMaxParameters = 1e15;

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
      size_t d = edit_distance(key, known);
      if (d < closest_distance) closest = known, closest_distance = d;
    }
    if (!closest.empty()) {
      return Status::invalid("{}: unknown key '{}' (did you mean '{}'?)", source, key, closest);
    }
    return Status::invalid("{}: unknown key '{}'", source, key);
  }
  return Status::ok_status();
}

// A JSON value as it appears in an error message: type and (short) text.
std::string describe(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return fmt::format("{} {}", value.type_name(), text);
}

// Typed reads of one config object. An absent or null key leaves the output
// untouched (its default), as Hugging Face treats None; a present key of the
// wrong type is an error naming source, key and what was expected.
class FieldReader {
 public:
  FieldReader(const nlohmann::json& object, const std::string& source) : object_(object), source_(source) {}

  bool has(const char* key) const {
    auto it = object_.find(key);
    return it != object_.end() && !it->is_null();
  }

  Status integer(const char* key, int64_t* out) const {
    if (!has(key)) return Status::ok_status();
    const nlohmann::json& v = object_.at(key);
    bool fits = v.is_number_integer() &&
                !(v.is_number_unsigned() &&
                  v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
    if (!fits) return Status::invalid("{}: '{}' must be an integer (got {})", source_, key, describe(v));
    *out = v.get<int64_t>();
    return Status::ok_status();
  }

  Status required_integer(const char* key, int64_t* out) const {
    if (!has(key)) return Status::invalid("{}: '{}' is required (an integer)", source_, key);
    return integer(key, out);
  }

  Status number(const char* key, double* out) const {
    if (!has(key)) return Status::ok_status();
    const nlohmann::json& v = object_.at(key);
    if (!v.is_number()) return Status::invalid("{}: '{}' must be a number (got {})", source_, key, describe(v));
    *out = v.get<double>();
    return Status::ok_status();
  }

  Status boolean(const char* key, bool* out) const {
    if (!has(key)) return Status::ok_status();
    const nlohmann::json& v = object_.at(key);
    if (!v.is_boolean()) {
      return Status::invalid("{}: '{}' must be true or false (got {})", source_, key, describe(v));
    }
    *out = v.get<bool>();
    return Status::ok_status();
  }

  Status string(const char* key, std::string* out) const {
    if (!has(key)) return Status::ok_status();
    const nlohmann::json& v = object_.at(key);
    if (!v.is_string()) return Status::invalid("{}: '{}' must be a string (got {})", source_, key, describe(v));
    *out = v.get<std::string>();
    return Status::ok_status();
  }

 private:
  const nlohmann::json& object_;
  const std::string& source_;
};

Status parse_activation(const FieldReader& reader, const std::string& source, Activation* out) {
  std::string name(activation_name(*out));
  SC_RETURN_IF_ERROR(reader.string("hidden_act", &name));
  if (name == kGeluTanhName) {
    *out = Activation::kGeluTanh;
  } else if (name == kSiluName) {
    *out = Activation::kSilu;
  } else {
    return Status::invalid("{}: 'hidden_act' must be \"{}\" or \"{}\" (got \"{}\")", source, kGeluTanhName,
                           kSiluName, name);
  }
  return Status::ok_status();
}

// The shape keys; a config without them describes no model.
Status parse_shape(const FieldReader& r, const std::string& source, ModelConfig* c) {
  SC_RETURN_IF_ERROR(r.required_integer("vocab_size", &c->vocab_size));
  SC_RETURN_IF_ERROR(r.required_integer("hidden_size", &c->hidden_size));
  SC_RETURN_IF_ERROR(r.required_integer("num_hidden_layers", &c->num_hidden_layers));
  SC_RETURN_IF_ERROR(r.required_integer("num_attention_heads", &c->num_attention_heads));
  SC_RETURN_IF_ERROR(r.required_integer("intermediate_size", &c->intermediate_size));
  SC_RETURN_IF_ERROR(r.required_integer("max_position_embeddings", &c->max_position_embeddings));

  c->num_key_value_heads = c->num_attention_heads;  // no GQA unless asked
  SC_RETURN_IF_ERROR(r.integer("num_key_value_heads", &c->num_key_value_heads));

  if (r.has("head_dim")) {
    SC_RETURN_IF_ERROR(r.integer("head_dim", &c->head_dim));
  } else if (c->hidden_size > 0 && c->num_attention_heads > 0) {
    // Non-positive sizes are left for validate() to report by name.
    if (c->hidden_size % c->num_attention_heads != 0) {
      return Status::invalid(
          "{}: 'hidden_size' ({}) must be divisible by 'num_attention_heads' ({}) unless 'head_dim' is given",
          source, c->hidden_size, c->num_attention_heads);
    }
    c->head_dim = c->hidden_size / c->num_attention_heads;
  }
  return Status::ok_status();
}

Status parse_moe(const FieldReader& r, ModelConfig* c, const nlohmann::json& json, const std::string& source) {
  // Mixtral's config.json calls it num_local_experts.
  if (json.contains("num_local_experts") && json.contains("num_experts")) {
    return Status::invalid("{}: give 'num_experts' or its alias 'num_local_experts', not both", source);
  }
  SC_RETURN_IF_ERROR(r.integer("num_experts", &c->num_experts));
  SC_RETURN_IF_ERROR(r.integer("num_local_experts", &c->num_experts));
  c->num_experts_per_tok = c->is_moe() ? std::min<int64_t>(2, c->num_experts) : 0;  // Mixtral's default top-2
  SC_RETURN_IF_ERROR(r.integer("num_experts_per_tok", &c->num_experts_per_tok));
  SC_RETURN_IF_ERROR(r.integer("moe_layer_frequency", &c->moe_layer_frequency));
  SC_RETURN_IF_ERROR(r.boolean("router_renormalize", &c->router_renormalize));
  SC_RETURN_IF_ERROR(r.number("router_aux_loss_coef", &c->router_aux_loss_coef));
  SC_RETURN_IF_ERROR(r.number("router_z_loss_coef", &c->router_z_loss_coef));
  SC_RETURN_IF_ERROR(r.number("capacity_factor", &c->capacity_factor));
  return Status::ok_status();
}

Result<ModelConfig> parse_config(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) {
    return Status::invalid("{}: a model config must be a JSON object (got {})", source, describe(json));
  }
  SC_RETURN_IF_ERROR(check_keys(json, source));
  FieldReader r(json, source);
  ModelConfig c;
  SC_RETURN_IF_ERROR(r.string("model_type", &c.model_type));
  SC_RETURN_IF_ERROR(parse_shape(r, source, &c));
  SC_RETURN_IF_ERROR(r.number("rms_norm_eps", &c.rms_norm_eps));
  SC_RETURN_IF_ERROR(r.number("rope_theta", &c.rope_theta));
  SC_RETURN_IF_ERROR(r.boolean("tie_word_embeddings", &c.tie_word_embeddings));
  SC_RETURN_IF_ERROR(parse_activation(r, source, &c.hidden_act));

  if (c.head_dim > 0) c.attn_output_multiplier = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  SC_RETURN_IF_ERROR(r.number("attn_output_multiplier", &c.attn_output_multiplier));
  SC_RETURN_IF_ERROR(r.number("attn_logit_softcapping", &c.attn_logit_softcapping));  // null: off
  SC_RETURN_IF_ERROR(r.boolean("sandwich_norm", &c.sandwich_norm));
  SC_RETURN_IF_ERROR(r.number("embedding_multiplier_scale", &c.embedding_multiplier_scale));
  SC_RETURN_IF_ERROR(r.number("output_multiplier_scale", &c.output_multiplier_scale));
  SC_RETURN_IF_ERROR(parse_moe(r, &c, json, source));

  if (json.contains("training")) c.training = json.at("training");
  SC_RETURN_IF_ERROR(c.validate().with_context(source));
  return c;
}

Status require_positive(const char* name, int64_t value) {
  if (value <= 0) return Status::invalid("'{}' must be positive (got {})", name, value);
  return Status::ok_status();
}

Status require_positive(const char* name, double value) {
  if (!(value > 0) || !std::isfinite(value)) {
    return Status::invalid("'{}' must be a positive finite number (got {})", name, value);
  }
  return Status::ok_status();
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

}  // namespace

std::string_view activation_name(Activation activation) {
  switch (activation) {
    case Activation::kGeluTanh: return kGeluTanhName;
    case Activation::kSilu: return kSiluName;
  }
  return "unknown";
}

Result<ModelConfig> ModelConfig::from_json(const nlohmann::json& json, const std::string& source) {
  try {
    return parse_config(json, source);
  } catch (const nlohmann::json::exception& e) {
    // The reader checks types before every get<>(); this is a backstop.
    return Status::invalid("{}: {}", source, e.what());
  }
}

Result<ModelConfig> ModelConfig::load(const std::string& path) {
  SC_ASSIGN_OR_RETURN(std::string text, read_file(path));
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid("{}: not valid JSON: {}", path, e.what());
  }
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
  SC_RETURN_IF_ERROR(require_positive("vocab_size", vocab_size));
  SC_RETURN_IF_ERROR(require_positive("hidden_size", hidden_size));
  SC_RETURN_IF_ERROR(require_positive("num_hidden_layers", num_hidden_layers));
  SC_RETURN_IF_ERROR(require_positive("num_attention_heads", num_attention_heads));
  SC_RETURN_IF_ERROR(require_positive("num_key_value_heads", num_key_value_heads));
  SC_RETURN_IF_ERROR(require_positive("head_dim", head_dim));
  SC_RETURN_IF_ERROR(require_positive("intermediate_size", intermediate_size));
  SC_RETURN_IF_ERROR(require_positive("max_position_embeddings", max_position_embeddings));
  if (num_attention_heads % num_key_value_heads != 0) {
    return Status::invalid("'num_attention_heads' ({}) must be divisible by 'num_key_value_heads' ({})",
                           num_attention_heads, num_key_value_heads);
  }
  if (head_dim % 2 != 0) {
    return Status::invalid("'head_dim' ({}) must be even: RoPE rotates pairs (i, i + head_dim/2)", head_dim);
  }

  SC_RETURN_IF_ERROR(require_positive("rms_norm_eps", rms_norm_eps));
  SC_RETURN_IF_ERROR(require_positive("rope_theta", rope_theta));
  SC_RETURN_IF_ERROR(require_positive("attn_output_multiplier", attn_output_multiplier));
  SC_RETURN_IF_ERROR(require_positive("embedding_multiplier_scale", embedding_multiplier_scale));
  SC_RETURN_IF_ERROR(require_positive("output_multiplier_scale", output_multiplier_scale));
  if (!(attn_logit_softcapping >= 0) || !std::isfinite(attn_logit_softcapping)) {
    return Status::invalid("'attn_logit_softcapping' must be null, 0 (off) or a positive number (got {})",
                           attn_logit_softcapping);
  }

  if (num_experts < 0) return Status::invalid("'num_experts' must be 0, 1 (dense) or more (got {})", num_experts);
  if (num_experts_per_tok < 0) {
    return Status::invalid("'num_experts_per_tok' must not be negative (got {})", num_experts_per_tok);
  }
  if (num_experts_per_tok > std::max<int64_t>(num_experts, 1)) {
    return Status::invalid("'num_experts_per_tok' ({}) must not exceed 'num_experts' ({})", num_experts_per_tok,
                           num_experts);
  }
  if (is_moe() && num_experts_per_tok < 1) {
    return Status::invalid("'num_experts_per_tok' must be at least 1 when 'num_experts' ({}) > 1", num_experts);
  }
  SC_RETURN_IF_ERROR(require_positive("moe_layer_frequency", moe_layer_frequency));
  if (moe_layer_frequency != 1 && !is_moe()) {
    return Status::invalid("'moe_layer_frequency' ({}) sets an MoE layer pattern, but 'num_experts' ({}) makes every "
                           "layer dense", moe_layer_frequency, num_experts);
  }
  if (is_moe() && moe_layer_frequency > num_hidden_layers && num_hidden_layers > 1) {
    return Status::invalid("'moe_layer_frequency' ({}) exceeds 'num_hidden_layers' ({}): only layer 0 would be MoE",
                           moe_layer_frequency, num_hidden_layers);
  }
  if (router_aux_loss_coef < 0 || router_z_loss_coef < 0) {
    return Status::invalid("'router_aux_loss_coef' and 'router_z_loss_coef' must not be negative");
  }
  if (capacity_factor < 0) return Status::invalid("'capacity_factor' must not be negative (got {}); 0 is dropless", capacity_factor);

  if (!training.is_null() && !training.is_object()) {
    return Status::invalid("'training' must be an object (got {})", describe(training));
  }
  double parameters = approximate_parameters(*this);
  if (parameters > kMaxParameters) {
    return Status::invalid("the sizes give about {:.3g} parameters, more than the {:.0e} supported; check "
                           "'vocab_size', 'hidden_size', 'intermediate_size' and 'num_experts'",
                           parameters, kMaxParameters);
  }
  return Status::ok_status();
}

}  // namespace sc
