#include "model/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace sc {
namespace {

ModelConfig tiny_config(bool grok_options, bool moe = false) {
  nlohmann::json j = {{"vocab_size", 37}, {"hidden_size", 16}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"head_dim", 6},
                      {"intermediate_size", 24}, {"max_position_embeddings", 16}, {"rope_theta", 10000.0}};
  if (grok_options) {
    j.update({{"hidden_act", "gelu_pytorch_tanh"}, {"tie_word_embeddings", true}, {"sandwich_norm", true},
              {"attn_logit_softcapping", 2.0}, {"embedding_multiplier_scale", 3.0},
              {"output_multiplier_scale", 0.5773502691896257}, {"attn_output_multiplier", 0.3}});
  } else {
    j.update({{"hidden_act", "silu"}, {"tie_word_embeddings", false}});
  }
  if (moe) {
    j.update({{"num_experts", 4}, {"num_experts_per_tok", 2}, {"router_aux_loss_coef", 0.1},
              {"router_z_loss_coef", 0.01}});
    // Llama options: Mixtral's renormalized top-k, and a dense layer between MoE ones.
    if (!grok_options) j.update({{"router_renormalize", true}, {"moe_layer_frequency", 2}});
  }
  auto config = ModelConfig::from_json(j, "tiny");
  EXPECT_TRUE(config.ok()) << config.status().message();
  return *config;
}

struct Batch {
  std::vector<uint32_t> tokens, targets;
};

Batch make_batch(size_t n, uint32_t vocab, uint64_t seed) {
  Batch b{std::vector<uint32_t>(n), std::vector<uint32_t>(n)};
  for (size_t i = 0; i < n; ++i) {
    b.tokens[i] = static_cast<uint32_t>((i * 7 + seed * 13) % vocab);
    b.targets[i] = static_cast<uint32_t>((i * 11 + seed * 5 + 3) % vocab);
  }
  b.targets[1] = kIgnoreIndex;
  return b;
}

TEST(Model, ForwardAndBackwardReportWhichPartsOfTheBufferTheyUse) {
  // The data-parallel reducer starts sending a bucket when backward reports
  // it final, so a region reported final must never be written again.
  ThreadPool pool(2);
  for (bool moe : {false, true}) {
    ModelConfig config = tiny_config(true, moe);
    auto created = Model::create(config, 2, 5, pool, 1000);
    ASSERT_TRUE(created.ok()) << created.status().message();
    Model& model = **created;
    EXPECT_EQ(model.buffer_floats() % 1000, 0u);
    EXPECT_GE(model.buffer_floats(), model.num_floats());
    model.init_weights(3);
    Batch b = make_batch(10, static_cast<uint32_t>(config.vocab_size), 1);
    ASSERT_TRUE(model.forward(b.tokens.data(), b.targets.data()).ok());
    model.zero_grads();
    std::vector<size_t> offsets;
    std::vector<std::vector<float>> snapshots;
    model.backward(1.0f, [&](size_t offset) {
      offsets.push_back(offset);
      snapshots.emplace_back(model.grads() + offset, model.grads() + model.buffer_floats());
    });
    ASSERT_EQ(offsets.size(), static_cast<size_t>(config.num_hidden_layers) + 1) << "one report per layer, then 0";
    EXPECT_EQ(offsets.back(), 0u);
    for (size_t i = 0; i < offsets.size(); ++i) {
      if (i > 0) EXPECT_LT(offsets[i], offsets[i - 1]);
      const std::vector<float> now(model.grads() + offsets[i], model.grads() + model.buffer_floats());
      EXPECT_EQ(now, snapshots[i]) << "gradients at or after " << offsets[i] << " changed after being reported final";
    }
    // Zero padding stays zero.
    for (size_t i = model.num_floats(); i < model.buffer_floats(); ++i) ASSERT_EQ(model.grads()[i], 0.0f);

    // Forward asks for the parameters from the start of the buffer, in
    // growing prefixes that end with all of it; a failing wait ends it.
    std::vector<size_t> needed;
    auto sums = model.forward(b.tokens.data(), b.targets.data(), [&](size_t end) {
      needed.push_back(end);
      return Status();
    });
    ASSERT_TRUE(sums.ok());
    ASSERT_EQ(needed.size(), static_cast<size_t>(config.num_hidden_layers) + 2) << "embedding, each layer, the head";
    for (size_t i = 1; i < needed.size(); ++i) EXPECT_GT(needed[i], needed[i - 1]);
    EXPECT_EQ(needed.back(), model.buffer_floats());
    auto failed = model.forward(b.tokens.data(), b.targets.data(),
                                [](size_t) { return Status::timeout("all_gather timed out"); });
    ASSERT_FALSE(failed.ok());
    EXPECT_NE(failed.status().message().find("all_gather timed out"), std::string::npos);
  }
}

TEST(Model, UntrainedLossIsNearLogVocab) {
  ThreadPool pool(2);
  auto config = ModelConfig::preset("grok-mini");
  ASSERT_TRUE(config.ok());
  auto model = Model::create(*config, 2, 64, pool);
  ASSERT_TRUE(model.ok()) << model.status().message();
  (*model)->init_weights(1);
  Batch b = make_batch(2 * 64, static_cast<uint32_t>(config->vocab_size), 3);
  auto sums = (*model)->forward(b.tokens.data(), b.targets.data());
  ASSERT_TRUE(sums.ok());
  const double loss = sums->loss_sum / static_cast<double>(sums->count);
  const double ln_v = std::log(static_cast<double>(config->vocab_size));
  std::printf("untrained grok-mini loss %.4f, ln(V) = %.4f\n", loss, ln_v);
  EXPECT_NEAR(loss, ln_v, 0.05 * ln_v);
}

// The whole model's gradient against central finite differences of its loss,
// for a few entries of every tensor. fp32 throughout, so the tolerance is
// loose-ish, but a wrong sign or a missing term is far outside it.
void check_gradients(bool grok_options, bool moe = false) {
  ThreadPool pool(2);
  ModelConfig config = tiny_config(grok_options, moe);
  const int64_t B = 2, T = 5;
  auto created = Model::create(config, B, T, pool);
  ASSERT_TRUE(created.ok()) << created.status().message();
  Model& model = **created;
  model.init_weights(7);
  // Larger weights than the init, so every non-linearity is exercised.
  for (size_t i = 0; i < model.num_floats(); ++i) model.params()[i] *= 8.0f;
  for (const auto& t : model.layout()) {
    if (t.is_norm) {
      for (int64_t i = 0; i < t.numel(); ++i) model.params()[t.offset + i] = 1.0f + 0.1f * static_cast<float>(i % 5);
    }
  }
  Batch b = make_batch(B * T, static_cast<uint32_t>(config.vocab_size), 1);
  auto loss_at = [&]() {
    auto s = model.forward(b.tokens.data(), b.targets.data());
    return s->loss_sum / static_cast<double>(s->count) + model.auxiliary_loss_term();
  };
  model.zero_grads();
  auto sums = model.forward(b.tokens.data(), b.targets.data());
  ASSERT_TRUE(sums.ok());
  model.backward(1.0f / static_cast<float>(sums->count));
  std::vector<float> analytic(model.grads(), model.grads() + model.num_floats());

  // Top-k routing is piecewise: a step must not flip a token's experts, so MoE uses a smaller one.
  const float eps = moe ? 2e-3f : 1e-2f;
  double worst = 0;
  std::string worst_name;
  for (const auto& t : model.layout()) {
    for (int64_t probe = 0; probe < 4; ++probe) {
      const int64_t i = t.offset + (probe * 7919) % t.numel();
      float& p = model.params()[i];
      const float saved = p;
      p = saved + eps;
      const double plus = loss_at();
      p = saved - eps;
      const double minus = loss_at();
      p = saved;
      const double numeric = (plus - minus) / (2.0 * eps);
      const double diff = std::abs(numeric - analytic[i]) / std::max(1.0, std::abs(numeric)) ;
      if (diff > worst) worst = diff, worst_name = t.name;
      EXPECT_NEAR(analytic[i], numeric, 2e-3 + 2e-2 * std::abs(numeric)) << t.name << " entry " << i - t.offset;
    }
  }
  std::printf("%s%s: worst |analytic - numeric| / max(1, |numeric|) = %.2e (%s)\n",
              grok_options ? "grok options" : "llama options", moe ? " + MoE" : "", worst, worst_name.c_str());
}

TEST(Model, GradientsMatchFiniteDifferencesGrokOptions) { check_gradients(true); }
TEST(Model, GradientsMatchFiniteDifferencesLlamaOptions) { check_gradients(false); }
TEST(Model, GradientsMatchFiniteDifferencesGrokMoe) { check_gradients(true, true); }
TEST(Model, GradientsMatchFiniteDifferencesMixtralMoe) { check_gradients(false, true); }

TEST(Model, ResultsDoNotDependOnThreadCount) {
  ModelConfig config = tiny_config(true);
  std::vector<std::vector<float>> grads;
  for (size_t threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    auto model = Model::create(config, 2, 8, pool);
    ASSERT_TRUE(model.ok());
    (*model)->init_weights(3);
    Batch b = make_batch(16, 37, 2);
    (*model)->zero_grads();
    auto s = (*model)->forward(b.tokens.data(), b.targets.data());
    ASSERT_TRUE(s.ok());
    (*model)->backward(1.0f);
    grads.emplace_back((*model)->grads(), (*model)->grads() + (*model)->num_floats());
  }
  EXPECT_EQ(grads[0], grads[1]);
  EXPECT_EQ(grads[0], grads[2]);
}

TEST(Model, RejectsContextLongerThanConfigAndTokensOutsideVocab) {
  ThreadPool pool(1);
  ModelConfig config = tiny_config(false);
  auto too_long = Model::create(config, 1, 17, pool);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("max_position_embeddings"), std::string::npos);
  auto model = Model::create(config, 1, 4, pool);
  ASSERT_TRUE(model.ok());
  std::vector<uint32_t> tokens = {1, 2, 99, 3}, targets = {1, 2, 3, 4};
  EXPECT_FALSE((*model)->forward(tokens.data(), targets.data()).ok());
}

// Issue 15, item 2: sizes in range can still need more memory than the
// machine has, or a micro-batch more tokens than 64-bit sizes allow for.
TEST(Model, SizesTheMachineCannotHoldAreClearErrorsBeforeAllocating) {
  ThreadPool pool(1);
  ModelConfig big = tiny_config(true);
  big.vocab_size = int64_t{1} << 24;
  big.hidden_size = int64_t{1} << 16;
  ASSERT_TRUE(big.validate().ok()) << big.validate().message();
  auto model = Model::create(big, 1, 8, pool);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("parameters+gradients: needs "), std::string::npos)
      << model.status().message();
  EXPECT_NE(model.status().message().find("more than this machine's"), std::string::npos) << model.status().message();
  auto batch = Model::create(tiny_config(true), int64_t{1} << 21, 16, pool);
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().message(), "a micro-batch of 2097152 x 16 tokens is more than the 16777216 supported");
  auto context = Model::create(tiny_config(true), 1, 17, pool);
  ASSERT_FALSE(context.ok());
  EXPECT_EQ(context.status().message(), "sequence length 17 exceeds the model's max_position_embeddings 16");
}

}  // namespace
}  // namespace sc
