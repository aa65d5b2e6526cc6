#include "model/config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <string>

#include <nlohmann/json.hpp>

namespace sc {
namespace {

using Json = nlohmann::json;

// A small valid config with only the required keys.
Json minimal_config() {
  return {
      {"vocab_size", 256},
      {"hidden_size", 64},
      {"num_hidden_layers", 2},
      {"num_attention_heads", 4},
      {"intermediate_size", 128},
      {"max_position_embeddings", 128},
  };
}

// Asserts that `json` is rejected and that the message names the source and
// every one of `fragments` (field names, values).
void expect_rejected(const Json& json, std::initializer_list<std::string> fragments) {
  Result<ModelConfig> config = ModelConfig::from_json(json, "config.json");
  ASSERT_FALSE(config.ok()) << json.dump();
  const std::string& message = config.status().message();
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument) << message;
  EXPECT_EQ(message.rfind("config.json: ", 0), 0u) << message;
  for (const std::string& fragment : fragments) {
    EXPECT_NE(message.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << message;
  }
}

Json with(Json json, const std::string& key, Json value) {
  json[key] = std::move(value);
  return json;
}

TEST(ModelConfig, PresetNames) {
  std::vector<std::string> expected = {"grok-1",    "grok-mini", "grok-mini-moe", "llama-mini",
                                       "llama2-7b", "gpt2-124m", "mixtral-8x7b"};
  EXPECT_EQ(ModelConfig::preset_names(), expected);
}

TEST(ModelConfig, EveryPresetRoundTripsThroughJson) {
  for (const std::string& name : ModelConfig::preset_names()) {
    SCOPED_TRACE(name);
    Result<ModelConfig> config = ModelConfig::preset(name);
    ASSERT_TRUE(config.ok()) << config.status().message();
    Result<ModelConfig> again = ModelConfig::from_json(config->to_json(), "round trip");
    ASSERT_TRUE(again.ok()) << again.status().message();
    EXPECT_EQ(*again, *config);
    // And through text, as a config.json written to disk.
    Result<ModelConfig> from_text = ModelConfig::from_json(Json::parse(config->to_json().dump(2)), "text");
    ASSERT_TRUE(from_text.ok()) << from_text.status().message();
    EXPECT_EQ(*from_text, *config);
  }
}

TEST(ModelConfig, Grok1PresetIsThePublishedShape) {
  Result<ModelConfig> c = ModelConfig::preset("grok-1");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->vocab_size, 131072);
  EXPECT_EQ(c->hidden_size, 6144);
  EXPECT_EQ(c->num_hidden_layers, 64);
  EXPECT_EQ(c->num_attention_heads, 48);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->intermediate_size, 32768);
  EXPECT_EQ(c->max_position_embeddings, 8192);
  EXPECT_EQ(c->hidden_act, Activation::kGeluTanh);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_TRUE(c->sandwich_norm);
  EXPECT_EQ(c->attn_logit_softcapping, 30.0);
  EXPECT_EQ(c->attn_output_multiplier, 0.08838834764831845);
  EXPECT_EQ(c->embedding_multiplier_scale, 78.38367176906169);
  EXPECT_EQ(c->output_multiplier_scale, 0.5773502691896257);
  EXPECT_EQ(c->num_experts, 8);
  EXPECT_EQ(c->num_experts_per_tok, 2);
  EXPECT_FALSE(c->router_renormalize);
  EXPECT_TRUE(c->is_moe_layer(0));
  EXPECT_TRUE(c->is_moe_layer(63));
}

TEST(ModelConfig, SmallPresetsHaveTheirShapes) {
  Result<ModelConfig> mini = ModelConfig::preset("grok-mini");
  ASSERT_TRUE(mini.ok());
  EXPECT_FALSE(mini->is_moe());
  EXPECT_EQ(mini->attn_output_multiplier, 0.125);
  EXPECT_EQ(mini->num_key_value_heads, 2);
  Result<ModelConfig> moe = ModelConfig::preset("grok-mini-moe");
  ASSERT_TRUE(moe.ok());
  EXPECT_EQ(moe->num_experts, 4);
  EXPECT_EQ(moe->intermediate_size, 512);
  Result<ModelConfig> llama = ModelConfig::preset("llama-mini");
  ASSERT_TRUE(llama.ok());
  EXPECT_EQ(llama->hidden_act, Activation::kSilu);
  EXPECT_FALSE(llama->tie_word_embeddings);
  EXPECT_EQ(llama->attn_logit_softcapping, 0.0);
  Result<ModelConfig> mixtral = ModelConfig::preset("mixtral-8x7b");
  ASSERT_TRUE(mixtral.ok());
  EXPECT_TRUE(mixtral->router_renormalize);
  EXPECT_EQ(mixtral->rope_theta, 1e6);
  EXPECT_EQ(mixtral->head_dim, 128);
}

TEST(ModelConfig, DefaultsAreFilledIn) {
  Result<ModelConfig> c = ModelConfig::from_json(minimal_config(), "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_DOUBLE_EQ(c->attn_output_multiplier, 0.25);
  EXPECT_EQ(c->hidden_act, Activation::kSilu);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_FALSE(c->sandwich_norm);
  EXPECT_EQ(c->attn_logit_softcapping, 0.0);
  EXPECT_EQ(c->embedding_multiplier_scale, 1.0);
  EXPECT_EQ(c->output_multiplier_scale, 1.0);
  EXPECT_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_EQ(c->rope_theta, 10000.0);
  EXPECT_EQ(c->num_experts, 0);
  EXPECT_EQ(c->num_experts_per_tok, 0);
  EXPECT_EQ(c->moe_layer_frequency, 1);
  EXPECT_FALSE(c->router_renormalize);
  EXPECT_TRUE(c->training.is_null());
  EXPECT_FALSE(c->to_json().contains("training"));
}

TEST(ModelConfig, MoeDefaultsToTopTwo) {
  Result<ModelConfig> c = ModelConfig::from_json(with(minimal_config(), "num_experts", 8), "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->num_experts_per_tok, 2);
  EXPECT_TRUE(c->is_moe_layer(1));
}

TEST(ModelConfig, MoeLayerFrequencyPicksEveryNthLayerFromZero) {
  Json json = minimal_config();
  json["num_hidden_layers"] = 4;
  json["num_experts"] = 4;
  json["moe_layer_frequency"] = 2;
  Result<ModelConfig> c = ModelConfig::from_json(json, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->is_moe_layer(0));
  EXPECT_FALSE(c->is_moe_layer(1));
  EXPECT_TRUE(c->is_moe_layer(2));
  EXPECT_FALSE(c->is_moe_layer(3));
}

TEST(ModelConfig, SoftcappingNullOrZeroIsOffAndWrittenAsNull) {
  for (Json value : {Json(nullptr), Json(0), Json(0.0)}) {
    Result<ModelConfig> c =
        ModelConfig::from_json(with(minimal_config(), "attn_logit_softcapping", value), "config.json");
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->attn_logit_softcapping, 0.0);
    EXPECT_TRUE(c->to_json().at("attn_logit_softcapping").is_null());
  }
  Result<ModelConfig> on = ModelConfig::from_json(with(minimal_config(), "attn_logit_softcapping", 50), "c");
  ASSERT_TRUE(on.ok());
  EXPECT_EQ(on->attn_logit_softcapping, 50.0);
}

TEST(ModelConfig, IntegerValuedNumbersAreAcceptedForFloats) {
  // transformers writes "rope_theta": 10000 in some configs.
  Result<ModelConfig> c = ModelConfig::from_json(with(minimal_config(), "rope_theta", 500000), "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->rope_theta, 500000.0);
}

TEST(ModelConfig, TrainingObjectIsKeptRaw) {
  Json training = {{"lr", 3e-4}, {"batch_size", 8}, {"anything", {{"nested", true}}}};
  Result<ModelConfig> c = ModelConfig::from_json(with(minimal_config(), "training", training), "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->training, training);
  EXPECT_EQ(c->to_json().at("training"), training);
  Result<ModelConfig> again = ModelConfig::from_json(c->to_json(), "round trip");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *c);
}

TEST(ModelConfig, IgnoredHuggingFaceKeysAreAccepted) {
  Json json = minimal_config();
  json["architectures"] = {"LlamaForCausalLM"};
  json["torch_dtype"] = "bfloat16";
  json["transformers_version"] = "4.38.0";
  json["bos_token_id"] = 1;
  json["eos_token_id"] = 2;
  json["pad_token_id"] = nullptr;
  json["initializer_range"] = 0.02;
  json["use_cache"] = true;
  json["attention_bias"] = false;
  json["attention_dropout"] = 0.0;
  json["mlp_bias"] = false;
  json["rope_scaling"] = nullptr;
  Result<ModelConfig> c = ModelConfig::from_json(json, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  Result<ModelConfig> plain = ModelConfig::from_json(minimal_config(), "config.json");
  EXPECT_EQ(*c, *plain);
}

TEST(ModelConfig, UnknownKeyIsNamed) {
  expect_rejected(with(minimal_config(), "rotary_pct", 0.25), {"unknown key 'rotary_pct'"});
}

TEST(ModelConfig, MisspelledKeyGetsASuggestion) {
  Json json = minimal_config();
  json.erase("hidden_size");
  json["hiden_size"] = 64;
  expect_rejected(json, {"unknown key 'hiden_size'", "did you mean 'hidden_size'"});
}

TEST(ModelConfig, NonPositiveSizesAreNamed) {
  for (const char* key : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                          "num_key_value_heads", "head_dim", "intermediate_size", "max_position_embeddings"}) {
    SCOPED_TRACE(key);
    expect_rejected(with(minimal_config(), key, 0), {std::string("'") + key + "' must be an integer in [", "got number 0"});
    expect_rejected(with(minimal_config(), key, -3), {std::string("'") + key + "' must be an integer in [", "got number -3"});
  }
}

// Issue 15, item 2: a size past its bound used to pass validate() and wrap a
// product downstream (max_position_embeddings 2^62 made generate's KV cache
// L·T·Hkv·D wrap and write out of bounds).
TEST(ModelConfig, SizesHaveDocumentedUpperBounds) {
  expect_rejected(with(minimal_config(), "max_position_embeddings", int64_t{4611686018427387904}),
                  {"'max_position_embeddings' must be an integer in [1, 16777216]", "got number 4611686018427387904"});
  expect_rejected(with(minimal_config(), "vocab_size", (int64_t{1} << 24) + 1), {"'vocab_size'", "[1, 16777216]"});
  expect_rejected(with(minimal_config(), "hidden_size", int64_t{1} << 18), {"'hidden_size'", "[1, 131072]"});
  expect_rejected(with(minimal_config(), "num_hidden_layers", 1025), {"'num_hidden_layers'", "[1, 1024]"});
  expect_rejected(with(minimal_config(), "num_attention_heads", 2048), {"'num_attention_heads'", "[1, 1024]"});
  expect_rejected(with(minimal_config(), "head_dim", 8192), {"'head_dim'", "[2, 4096]"});
  expect_rejected(with(minimal_config(), "intermediate_size", int64_t{1} << 21), {"'intermediate_size'", "[1, 1048576]"});
  expect_rejected(with(minimal_config(), "num_experts", 4096), {"'num_experts'", "[0, 1024]"});
  expect_rejected(with(minimal_config(), "num_local_experts", 4096), {"'num_local_experts'", "[0, 1024]"});
  // Every bound at once is allowed field by field, and the products stay in
  // 64 bits; the model-wide bounds reject the whole.
  Json largest = minimal_config();
  for (const auto& [key, value] : std::initializer_list<std::pair<const char*, int64_t>>{
           {"vocab_size", int64_t{1} << 24}, {"hidden_size", int64_t{1} << 17}, {"num_hidden_layers", 1024},
           {"num_attention_heads", 1024}, {"head_dim", 4096}, {"intermediate_size", int64_t{1} << 20},
           {"max_position_embeddings", int64_t{1} << 24}}) {
    largest[key] = value;
  }
  expect_rejected(largest, {"parameters, more than the 1e+15 supported"});
  // A bound set in code (not read from JSON) is caught by validate() too.
  Result<ModelConfig> c = ModelConfig::preset("grok-mini");
  ASSERT_TRUE(c.ok());
  ModelConfig edited = *c;
  edited.max_position_embeddings = int64_t{1} << 62;
  EXPECT_EQ(edited.validate().message(),
            "'max_position_embeddings' must be an integer in [1, 16777216] (got 4611686018427387904)");
}

TEST(ModelConfig, FloatsMustBeFiniteAndInRange) {
  ModelConfig c = *ModelConfig::preset("grok-mini");
  c.rope_theta = std::numeric_limits<double>::infinity();
  EXPECT_NE(c.validate().message().find("'rope_theta' must be a number in [1, "), std::string::npos)
      << c.validate().message();
  c = *ModelConfig::preset("grok-mini");
  c.capacity_factor = std::nan("");
  EXPECT_NE(c.validate().message().find("'capacity_factor' must be a number in [0, 1000]"), std::string::npos)
      << c.validate().message();
  expect_rejected(with(minimal_config(), "rms_norm_eps", 2.0), {"'rms_norm_eps' must be a number in [1e-12, 1]"});
  expect_rejected(with(minimal_config(), "router_aux_loss_coef", 1e300), {"'router_aux_loss_coef'", "[0, 1000]"});
}

TEST(ModelConfig, ModelsWithTooManyTensorsAreRejected) {
  Json json = minimal_config();
  json.update({{"num_hidden_layers", 1024}, {"num_experts", 1024}, {"num_experts_per_tok", 1}});
  expect_rejected(json, {"tensors, more than the 1048576 supported", "'num_experts'"});
}

TEST(ModelConfig, AHugeUnknownKeyIsQuotedShortAndQuickly) {
  const std::string key(10'000'000, 'k');
  const std::string message = ModelConfig::from_json(with(minimal_config(), key, 1), "config.json").status().message();
  EXPECT_LT(message.size(), 200u) << message.substr(0, 300);
  EXPECT_NE(message.find("unknown key 'kkkk"), std::string::npos) << message;
  expect_rejected(with(minimal_config(), "hidden_act", std::string(1000, 'g')),
                  {"'hidden_act' must be a string of at most 256 bytes"});
}

TEST(ModelConfig, MissingRequiredKeyIsNamed) {
  Json json = minimal_config();
  json.erase("vocab_size");
  expect_rejected(json, {"'vocab_size' is required"});
}

TEST(ModelConfig, HeadsMustShareKvHeadsEvenly) {
  Json json = minimal_config();
  json["hidden_size"] = 96;
  json["num_attention_heads"] = 6;
  json["num_key_value_heads"] = 4;
  expect_rejected(json, {"'num_attention_heads' (6) must be divisible by 'num_key_value_heads' (4)"});
}

TEST(ModelConfig, DefaultHeadDimNeedsDivisibleHiddenSize) {
  Json json = minimal_config();
  json["hidden_size"] = 100;
  json["num_attention_heads"] = 3;
  json["num_key_value_heads"] = 1;
  expect_rejected(json, {"'hidden_size' (100) must be divisible by 'num_attention_heads' (3)", "'head_dim'"});
  json["head_dim"] = 32;
  Result<ModelConfig> c = ModelConfig::from_json(json, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->head_dim, 32);
}

TEST(ModelConfig, OddHeadDimIsRejected) {
  expect_rejected(with(minimal_config(), "head_dim", 15), {"'head_dim' (15) must be even"});
}

TEST(ModelConfig, WrongJsonTypesAreNamed) {
  expect_rejected(with(minimal_config(), "rope_theta", "10000"), {"'rope_theta' must be a number", "string"});
  expect_rejected(with(minimal_config(), "hidden_size", 64.5), {"'hidden_size' must be an integer"});
  expect_rejected(with(minimal_config(), "hidden_size", "64"), {"'hidden_size' must be an integer"});
  expect_rejected(with(minimal_config(), "vocab_size", Json::array({1})), {"'vocab_size' must be an integer"});
  expect_rejected(with(minimal_config(), "tie_word_embeddings", "yes"), {"'tie_word_embeddings' must be true"});
  expect_rejected(with(minimal_config(), "tie_word_embeddings", 1), {"'tie_word_embeddings' must be true"});
  expect_rejected(with(minimal_config(), "model_type", 7), {"'model_type' must be a string"});
  expect_rejected(with(minimal_config(), "hidden_act", true), {"'hidden_act' must be a string"});
  expect_rejected(with(minimal_config(), "training", 5), {"'training' must be an object"});
  expect_rejected(with(minimal_config(), "vocab_size", 18446744073709551615ull), {"'vocab_size' must be an integer"});
}

TEST(ModelConfig, ConfigMustBeAnObject) {
  expect_rejected(Json::array({1, 2}), {"JSON object"});
}

TEST(ModelConfig, HiddenActMustBeOneOfTwo) {
  expect_rejected(with(minimal_config(), "hidden_act", "gelu"),
                  {"'hidden_act' must be \"gelu_pytorch_tanh\" or \"silu\"", "got \"gelu\""});
}

TEST(ModelConfig, FloatsMustBePositive) {
  for (const char* key : {"rms_norm_eps", "rope_theta", "attn_output_multiplier", "embedding_multiplier_scale",
                          "output_multiplier_scale"}) {
    SCOPED_TRACE(key);
    expect_rejected(with(minimal_config(), key, 0.0), {std::string("'") + key + "' must be a number in ["});
    expect_rejected(with(minimal_config(), key, -1.5), {std::string("'") + key + "' must be a number in ["});
  }
  expect_rejected(with(minimal_config(), "attn_logit_softcapping", -30.0), {"'attn_logit_softcapping'"});
}

TEST(ModelConfig, ExpertOptionsAreChecked) {
  Json moe = with(minimal_config(), "num_experts", 4);
  expect_rejected(with(moe, "num_experts_per_tok", 5),
                  {"'num_experts_per_tok' (5) must not exceed 'num_experts' (4)"});
  expect_rejected(with(moe, "num_experts_per_tok", 0), {"'num_experts_per_tok' must be at least 1"});
  expect_rejected(with(moe, "moe_layer_frequency", 0), {"'moe_layer_frequency' must be an integer in [1, 1024]"});
  expect_rejected(with(moe, "router_renormalize", "true"), {"'router_renormalize' must be true"});
  expect_rejected(with(minimal_config(), "num_experts", -1), {"'num_experts'"});
  expect_rejected(with(minimal_config(), "num_experts_per_tok", 2),
                  {"'num_experts_per_tok' (2) must not exceed 'num_experts' (0)"});
}

TEST(ModelConfig, AbsurdSizesAreRejected) {
  Json json = minimal_config();
  json.update({{"hidden_size", int64_t{1} << 17}, {"num_attention_heads", 128}, {"intermediate_size", int64_t{1} << 20},
               {"num_hidden_layers", 64}, {"num_experts", 64}});
  expect_rejected(json, {"parameters"});
}

TEST(ModelConfig, ValidateCatchesEditsMadeInCode) {
  Result<ModelConfig> c = ModelConfig::preset("grok-mini");
  ASSERT_TRUE(c.ok());
  ModelConfig edited = *c;
  EXPECT_TRUE(edited.validate().ok());
  edited.num_key_value_heads = 4;
  Status s = edited.validate();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'num_key_value_heads' (4)"), std::string::npos) << s.message();
}

class ModelConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("model_config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(ModelConfigFile, LoadsAFile) {
  Result<ModelConfig> grok = ModelConfig::preset("grok-mini");
  ASSERT_TRUE(grok.ok());
  std::string path = write("config.json", grok->to_json().dump(2));
  Result<ModelConfig> loaded = ModelConfig::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(*loaded, *grok);
}

TEST_F(ModelConfigFile, ErrorsNameTheFile) {
  std::string path = write("config.json", with(minimal_config(), "hidden_size", 0).dump());
  Result<ModelConfig> c = ModelConfig::load(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), path + ": 'hidden_size' must be an integer in [1, 131072] (got number 0)");
}

TEST_F(ModelConfigFile, InvalidJsonIsAnError) {
  std::string path = write("config.json", "{\"vocab_size\": 12,");
  Result<ModelConfig> c = ModelConfig::load(path);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(path + ": not valid JSON"), std::string::npos) << c.status().message();
}

// Issue 15, item 1: `train --config x.json` with a value nested 100,000
// deep crashed while an error message printed the whole value.
TEST_F(ModelConfigFile, DeeplyNestedJsonIsAnErrorNotACrash) {
  const size_t depth = 100000;
  std::string path = write("x.json", "{\"model_type\": " + std::string(depth, '[') + std::string(depth, ']') + "}");
  Result<ModelConfig> c = ModelConfig::load(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), path + ": JSON nested more than 64 levels deep (at byte 78)");
  // Nested within the bound, the value is described by its size only.
  path = write("y.json", with(minimal_config(), "model_type", Json::parse(std::string(60, '[') + std::string(60, ']'))).dump());
  c = ModelConfig::load(path);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'model_type' must be a string of at most 256 bytes (got an array of 1)"),
            std::string::npos) << c.status().message();
}

TEST_F(ModelConfigFile, ADeviceOrAHugeFileIsNotRead) {
  Result<ModelConfig> c = ModelConfig::load("/dev/zero");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "/dev/zero: not a regular file");
  const std::string path = (dir_ / "huge.json").string();
  std::filesystem::resize_file(write("huge.json", ""), 17u << 20);
  c = ModelConfig::load(path);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("more than the 16777216 a config.json may have"), std::string::npos)
      << c.status().message();
}

TEST_F(ModelConfigFile, MissingFileIsNotFound) {
  Result<ModelConfig> c = ModelConfig::load((dir_ / "absent.json").string());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
}

TEST_F(ModelConfigFile, ResolveTakesPresetOrPath) {
  Result<ModelConfig> preset = ModelConfig::resolve("llama-mini");
  ASSERT_TRUE(preset.ok()) << preset.status().message();
  EXPECT_EQ(preset->model_type, "llama");

  std::string path = write("my.json", minimal_config().dump());
  Result<ModelConfig> file = ModelConfig::resolve(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->vocab_size, 256);

  Result<ModelConfig> unknown = ModelConfig::resolve("grok-2");
  ASSERT_FALSE(unknown.ok());
  for (const std::string& name : ModelConfig::preset_names()) {
    EXPECT_NE(unknown.status().message().find(name), std::string::npos) << unknown.status().message();
  }
  EXPECT_NE(unknown.status().message().find("'grok-2'"), std::string::npos);
}

TEST(ModelConfig, UnknownPresetListsPresets) {
  Result<ModelConfig> c = ModelConfig::preset("grok-3");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("grok-mini-moe"), std::string::npos) << c.status().message();
}

}  // namespace
}  // namespace sc

namespace sc {
namespace {

nlohmann::json small_moe_json() {
  return {{"vocab_size", 64}, {"hidden_size", 16}, {"num_hidden_layers", 4}, {"num_attention_heads", 2},
          {"intermediate_size", 32}, {"max_position_embeddings", 32}, {"num_experts", 4}};
}

void expect_config_error(const nlohmann::json& j, const std::string& expected) {
  auto config = ModelConfig::from_json(j, "moe.json");
  ASSERT_FALSE(config.ok()) << j.dump();
  EXPECT_NE(config.status().message().find(expected), std::string::npos) << config.status().message();
  EXPECT_NE(config.status().message().find("moe.json"), std::string::npos) << config.status().message();
}

TEST(ModelConfigMoe, BadExpertSettingsAreClearErrors) {
  nlohmann::json j = small_moe_json();
  j["num_experts_per_tok"] = 5;
  expect_config_error(j, "'num_experts_per_tok' (5) must not exceed 'num_experts' (4)");
  j = small_moe_json();
  j["num_experts"] = 0;
  j["num_experts_per_tok"] = 2;
  expect_config_error(j, "'num_experts_per_tok' (2) must not exceed 'num_experts' (0)");
  j = small_moe_json();
  j["num_experts"] = 0;
  j["moe_layer_frequency"] = 2;
  expect_config_error(j, "'moe_layer_frequency' (2) sets an MoE layer pattern");
  j = small_moe_json();
  j["moe_layer_frequency"] = 9;
  expect_config_error(j, "exceeds 'num_hidden_layers' (4)");
  j = small_moe_json();
  j["capacity_factor"] = -1;
  expect_config_error(j, "'capacity_factor' must be a number in [0, 1000]");
  j = small_moe_json();
  j["num_local_experts"] = 4;
  expect_config_error(j, "not both");
}

TEST(ModelConfigMoe, MixtralSpellingAndLossCoefficients) {
  nlohmann::json j = small_moe_json();
  j.erase("num_experts");
  j.update({{"num_local_experts", 8}, {"router_aux_loss_coef", 0.02}, {"router_z_loss_coef", 0.0},
            {"capacity_factor", 1.25}, {"moe_layer_frequency", 2}});
  auto config = ModelConfig::from_json(j, "mixtral.json");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->num_experts, 8);
  EXPECT_DOUBLE_EQ(config->router_aux_loss_coef, 0.02);
  EXPECT_DOUBLE_EQ(config->capacity_factor, 1.25);
  EXPECT_TRUE(config->is_moe_layer(0));
  EXPECT_FALSE(config->is_moe_layer(1));
  auto again = ModelConfig::from_json(config->to_json(), "round trip");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *config);
}

}  // namespace
}  // namespace sc
