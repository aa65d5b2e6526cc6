#include "model/counts.h"

#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace sc {
namespace {

ModelConfig preset(const std::string& name) {
  Result<ModelConfig> c = ModelConfig::preset(name);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return *c;
}

// V=100, H=8, L=2, Hq=2, Hkv=1, D=4, F=16: small enough to count by hand.
ModelConfig tiny(bool tied, int64_t num_experts = 0) {
  nlohmann::json json = {
      {"vocab_size", 100},        {"hidden_size", 8},           {"num_hidden_layers", 2},
      {"num_attention_heads", 2}, {"num_key_value_heads", 1},   {"head_dim", 4},
      {"intermediate_size", 16},  {"max_position_embeddings", 64}, {"tie_word_embeddings", tied},
      {"num_experts", num_experts},
  };
  Result<ModelConfig> c = ModelConfig::from_json(json, "tiny");
  EXPECT_TRUE(c.ok()) << c.status().message();
  return *c;
}

std::vector<std::string> names(const std::vector<TensorSpec>& layout) {
  std::vector<std::string> out;
  for (const TensorSpec& t : layout) out.push_back(t.name);
  return out;
}

double relative_error(double value, double reference) { return std::fabs(value - reference) / reference; }

TEST(ModelCounts, Grok1MatchesPublishedSize) {
  ParameterCounts p = count_parameters(preset("grok-1"));
  // 64 x (attention 88,080,384 + norms 24,576 + router 49,152 + 8 x 603,979,776)
  // + embedding 805,306,368 + final norm 6,144.
  EXPECT_EQ(p.total, 315'684'820'992);
  EXPECT_LT(relative_error(static_cast<double>(p.total), 314e9), 0.02);  // "314B parameters"
  // Minus 6 of 8 experts in each of the 64 layers.
  EXPECT_EQ(p.active, 83'756'587'008);
  EXPECT_GE(p.active, 83e9);
  EXPECT_LE(p.active, 86e9);
  EXPECT_EQ(p.output, 0);
  EXPECT_EQ(p.embedding, 131072LL * 6144);
  EXPECT_EQ(p.router, 64LL * 8 * 6144);
}

TEST(ModelCounts, Llama2_7bMatchesHuggingFaceExactly) {
  ParameterCounts p = count_parameters(preset("llama2-7b"));
  EXPECT_EQ(p.total, 6'738'415'616);  // LlamaForCausalLM.num_parameters()
  EXPECT_EQ(p.active, p.total);
  EXPECT_EQ(p.output, 32000LL * 4096);
}

TEST(ModelCounts, Mixtral8x7bMatchesPublishedSize) {
  ParameterCounts p = count_parameters(preset("mixtral-8x7b"));
  EXPECT_EQ(p.total, 46'702'792'704);
  EXPECT_LT(relative_error(static_cast<double>(p.total), 46.7e9), 0.01);
  EXPECT_EQ(p.active, 12'879'925'248);
  EXPECT_LT(relative_error(static_cast<double>(p.active), 12.9e9), 0.01);
}

TEST(ModelCounts, SmallPresets) {
  ParameterCounts gpt2 = count_parameters(preset("gpt2-124m"));
  EXPECT_EQ(gpt2.total, 123'587'328);
  EXPECT_GE(gpt2.total, 120'000'000);
  EXPECT_LE(gpt2.total, 130'000'000);
  // 3,145,728 embedding + 6 x (393,216 attention + 1,179,648 MLP + 4 x 384 norms) + 384.
  EXPECT_EQ(count_parameters(preset("grok-mini")).total, 12'592'512);
  ParameterCounts moe = count_parameters(preset("grok-mini-moe"));
  EXPECT_EQ(moe.total, 19'679'616);
  // Two active experts of width 512 equal grok-mini's MLP; the router adds 6 x 4 x 384.
  EXPECT_EQ(moe.active, 12'592'512 + 6 * 4 * 384);
  EXPECT_EQ(count_parameters(preset("llama-mini")).total, 15'733'632);
}

TEST(ModelCounts, TinyConfigByHand) {
  ParameterCounts p = count_parameters(tiny(/*tied=*/false));
  // Per layer: q 8x8, k 4x8, v 4x8, o 8x8 = 192; MLP 3 x 16 x 8 = 384; 2 norms of 8.
  ASSERT_EQ(p.layers.size(), 2u);
  EXPECT_EQ(p.layers[0].attention, 192);
  EXPECT_EQ(p.layers[0].ffn, 384);
  EXPECT_EQ(p.layers[0].norms, 16);
  EXPECT_EQ(p.layers[0].router, 0);
  EXPECT_EQ(p.embedding, 800);
  EXPECT_EQ(p.output, 800);
  EXPECT_EQ(p.final_norm, 8);
  EXPECT_EQ(p.total, 800 + 2 * (192 + 384 + 16) + 8 + 800);
  EXPECT_EQ(p.active_matmul, 2 * (192 + 384) + 800);
  // Norms of 8 floats are padded to 16: the buffer is larger than the count.
  EXPECT_GT(p.buffer_floats, p.total);
}

TEST(ModelCounts, FlopsPerTokenByHand) {
  const int64_t seq_len = 10;
  // Matmul weights per token: 2 x (192 + 384) + output 100 x 8 = 1952.
  // Attention: 4 L T Hq D = 4 x 2 x 10 x 2 x 4 = 640.
  for (bool tied : {false, true}) {
    SCOPED_TRACE(tied);
    FlopsPerToken f = flops_per_token(tiny(tied), seq_len);
    EXPECT_EQ(f.forward_matmul, 2 * 1952);
    EXPECT_EQ(f.forward_attention, 640);
    EXPECT_EQ(f.forward, 3904 + 640);
    EXPECT_EQ(f.training, 3 * (3904 + 640));
    EXPECT_EQ(model_flops_per_token(tiny(tied), seq_len), 13632);
  }
}

TEST(ModelCounts, MoeFlopsCountOnlyActiveExperts) {
  // 4 experts, top-2: per layer 192 attention + 4 x 8 router + 2 x 384 experts.
  ModelConfig c = tiny(/*tied=*/true, /*num_experts=*/4);
  ParameterCounts p = count_parameters(c);
  EXPECT_EQ(p.layers[1].ffn, 4 * 384);
  EXPECT_EQ(p.layers[1].active_ffn, 2 * 384);
  EXPECT_EQ(p.active_matmul, 2 * (192 + 32 + 768) + 800);
  EXPECT_EQ(p.active, p.total - 2 * 2 * 384);
  EXPECT_EQ(flops_per_token(c, 10).forward_matmul, 2 * 2784);
}

TEST(ModelCounts, Grok1FlopsFollowSixN) {
  ModelConfig c = preset("grok-1");
  ParameterCounts p = count_parameters(c);
  FlopsPerToken f = flops_per_token(c, 8192);
  // Active matmul weights: active minus the embedding lookup and the norms,
  // plus the tied output projection.
  EXPECT_EQ(p.active_matmul, p.active - p.norms);
  EXPECT_EQ(f.training, 6 * p.active_matmul + 12LL * 64 * 8192 * 48 * 128);
}

TEST(ModelCounts, MemoryByHand) {
  ModelConfig c = tiny(/*tied=*/false);
  // Per layer per token: h_in 8, 2 rstd, a 8, q k v 16, attention out 8,
  // logsumexp 2, h_mid 8, f 8, gate/up 32, act*up 16 = 108; final 8 + 1 + 8.
  EXPECT_EQ(activation_floats_per_token(c), 2 * 108 + 17);
  MemoryEstimate m = estimate_training_memory(c, /*batch=*/2, /*seq_len=*/10);
  const int64_t buffer = count_parameters(c).buffer_floats;
  EXPECT_EQ(m.weights_bytes, 4 * buffer);
  EXPECT_EQ(m.grads_bytes, 4 * buffer);
  EXPECT_EQ(m.optimizer_bytes, 8 * buffer);
  EXPECT_EQ(m.logits_bytes, 4 * 2 * 10 * 100);
  EXPECT_EQ(m.activations_bytes, 4 * 20 * 233 + 4 * 20 * 100);
  EXPECT_EQ(m.total_bytes, 16 * buffer + m.activations_bytes);
}

TEST(ModelCounts, SandwichAndMoeActivationsByHand) {
  ModelConfig c = tiny(/*tied=*/true, /*num_experts=*/4);
  c.sandwich_norm = true;
  // Dense part: 8+4 rstd+8+16+8+2 + 8 (o_proj out) + 8+8 + 8 (FFN out) = 78;
  // MoE: router 4 + top-2 weights/ids 4 + inputs 16 + 3 x 2 x 16 + outputs 16 = 136.
  EXPECT_EQ(activation_floats_per_token(c), 2 * (78 + 136) + 17);
}

TEST(ModelCounts, LayoutIsAlignedOrderedAndUnique) {
  for (const std::string& name : ModelConfig::preset_names()) {
    if (name == "grok-1" || name == "mixtral-8x7b" || name == "llama2-7b") continue;  // same code, big
    SCOPED_TRACE(name);
    std::vector<TensorSpec> layout = parameter_layout(preset(name));
    std::set<std::string> seen;
    int64_t end = 0;
    int64_t total = 0;
    for (const TensorSpec& t : layout) {
      EXPECT_EQ(t.offset % kParameterAlignmentFloats, 0) << t.name;
      EXPECT_GE(t.offset, end) << t.name;
      EXPECT_LT(t.offset - end, kParameterAlignmentFloats) << t.name;  // no gap beyond padding
      EXPECT_TRUE(seen.insert(t.name).second) << "duplicate " << t.name;
      EXPECT_EQ(t.is_norm, t.shape.size() == 1) << t.name;
      end = t.offset + t.numel();
      total += t.numel();
    }
    EXPECT_EQ(parameter_buffer_floats(layout), (end + 15) / 16 * 16);
    EXPECT_EQ(count_parameters(preset(name)).total, total);
  }
}

TEST(ModelCounts, TiedAndUntiedDifferByOneEmbedding) {
  ParameterCounts tied = count_parameters(tiny(true));
  ParameterCounts untied = count_parameters(tiny(false));
  EXPECT_EQ(untied.total - tied.total, 100 * 8);
  std::vector<TensorSpec> layout = parameter_layout(tiny(false));
  EXPECT_EQ(layout.back().name, "lm_head.weight");
  EXPECT_EQ(parameter_layout(tiny(true)).back().name, "model.norm.weight");

  ModelConfig grok = preset("grok-1");
  ParameterCounts grok_tied = count_parameters(grok);
  grok.tie_word_embeddings = false;
  EXPECT_EQ(count_parameters(grok).total - grok_tied.total, 131072LL * 6144);
}

TEST(ModelCounts, LlamaLayoutNamesAndShapes) {
  std::vector<TensorSpec> layout = parameter_layout(tiny(false));
  std::vector<std::string> expected = {
      "model.embed_tokens.weight",
      "model.layers.0.input_layernorm.weight",
      "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.self_attn.k_proj.weight",
      "model.layers.0.self_attn.v_proj.weight",
      "model.layers.0.self_attn.o_proj.weight",
      "model.layers.0.post_attention_layernorm.weight",
      "model.layers.0.mlp.gate_proj.weight",
      "model.layers.0.mlp.up_proj.weight",
      "model.layers.0.mlp.down_proj.weight",
  };
  std::vector<std::string> got = names(layout);
  ASSERT_EQ(got.size(), 1 + 2 * 9 + 2u);
  EXPECT_EQ(std::vector<std::string>(got.begin(), got.begin() + 10), expected);
  EXPECT_EQ(got[10], "model.layers.1.input_layernorm.weight");
  EXPECT_EQ(got[19], "model.norm.weight");
  EXPECT_EQ(layout[2].shape, (std::vector<int64_t>{8, 8}));   // q [Hq D, H]
  EXPECT_EQ(layout[3].shape, (std::vector<int64_t>{4, 8}));   // k [Hkv D, H]
  EXPECT_EQ(layout[5].shape, (std::vector<int64_t>{8, 8}));   // o [H, Hq D]
  EXPECT_EQ(layout[7].shape, (std::vector<int64_t>{16, 8}));  // gate [F, H]
  EXPECT_EQ(layout[9].shape, (std::vector<int64_t>{8, 16}));  // down [H, F]
  EXPECT_EQ(layout[0].offset, 0);
  EXPECT_EQ(layout[1].offset, 800);
  EXPECT_EQ(layout[2].offset, 816);  // the norm of 8 is padded to 16
}

TEST(ModelCounts, SandwichMoeLayoutUsesGemmaAndMixtralNames) {
  ModelConfig c = tiny(/*tied=*/true, /*num_experts=*/2);
  c.sandwich_norm = true;
  std::vector<std::string> got = names(parameter_layout(c));
  std::vector<std::string> layer0 = {
      "model.layers.0.input_layernorm.weight",
      "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.self_attn.k_proj.weight",
      "model.layers.0.self_attn.v_proj.weight",
      "model.layers.0.self_attn.o_proj.weight",
      "model.layers.0.post_attention_layernorm.weight",
      "model.layers.0.pre_feedforward_layernorm.weight",
      "model.layers.0.post_feedforward_layernorm.weight",
      "model.layers.0.block_sparse_moe.gate.weight",
      "model.layers.0.block_sparse_moe.experts.0.w1.weight",
      "model.layers.0.block_sparse_moe.experts.0.w3.weight",
      "model.layers.0.block_sparse_moe.experts.0.w2.weight",
      "model.layers.0.block_sparse_moe.experts.1.w1.weight",
      "model.layers.0.block_sparse_moe.experts.1.w3.weight",
      "model.layers.0.block_sparse_moe.experts.1.w2.weight",
  };
  EXPECT_EQ(std::vector<std::string>(got.begin() + 1, got.begin() + 16), layer0);
  std::vector<TensorSpec> layout = parameter_layout(c);
  EXPECT_EQ(layout[9].shape, (std::vector<int64_t>{2, 8}));    // router [E, H]
  EXPECT_EQ(layout[10].shape, (std::vector<int64_t>{16, 8}));  // w1 [F, H]
  EXPECT_EQ(layout[12].shape, (std::vector<int64_t>{8, 16}));  // w2 [H, F]
  EXPECT_EQ(layout[12].expert, 0);
  EXPECT_EQ(layout[13].expert, 1);
}

TEST(ModelCounts, MoeLayerFrequencyMixesDenseAndMoeLayers) {
  ModelConfig c = tiny(/*tied=*/true, /*num_experts=*/4);
  c.moe_layer_frequency = 2;
  std::vector<std::string> got = names(parameter_layout(c));
  auto has = [&](const std::string& n) { return std::find(got.begin(), got.end(), n) != got.end(); };
  EXPECT_TRUE(has("model.layers.0.block_sparse_moe.gate.weight"));
  EXPECT_FALSE(has("model.layers.0.mlp.gate_proj.weight"));
  EXPECT_TRUE(has("model.layers.1.mlp.gate_proj.weight"));
  EXPECT_FALSE(has("model.layers.1.block_sparse_moe.gate.weight"));
  ParameterCounts p = count_parameters(c);
  EXPECT_TRUE(p.layers[0].is_moe);
  EXPECT_FALSE(p.layers[1].is_moe);
  EXPECT_EQ(p.active, p.total - 2 * 384);
}

TEST(ModelCounts, ReportGroupsTensorsByPattern) {
  nlohmann::json report = counts_report(preset("grok-1"), /*batch=*/1, /*seq_len=*/8192);
  EXPECT_EQ(report["parameters"]["total"], 315'684'820'992);
  EXPECT_EQ(report["parameters"]["active"], 83'756'587'008);
  EXPECT_EQ(report["flops_per_token"]["training"], model_flops_per_token(preset("grok-1"), 8192));
  bool found = false;
  for (const nlohmann::json& t : report["tensors"]) {
    if (t["name"] == "model.layers.{l}.block_sparse_moe.experts.{e}.w1.weight") {
      found = true;
      EXPECT_EQ(t["count"], 64 * 8);
      EXPECT_EQ(t["shape"], nlohmann::json::array({32768, 6144}));
      EXPECT_EQ(t["parameters"], 64LL * 8 * 32768 * 6144);
    }
  }
  EXPECT_TRUE(found) << report["tensors"].dump(1);
  int64_t sum = 0;
  for (const nlohmann::json& t : report["tensors"]) sum += t["parameters"].get<int64_t>();
  EXPECT_EQ(sum, 315'684'820'992);

  std::string text = format_counts_report(preset("grok-mini"), 8, 256);
  EXPECT_NE(text.find("12592512"), std::string::npos) << text;
  EXPECT_NE(text.find("model.layers.{l}.mlp.down_proj.weight"), std::string::npos) << text;
}

}  // namespace
}  // namespace sc
