// The inference path (prefill, batched decode over a KV cache) against the
// training forward, Model::forward, on the same parameter buffer.
#include "model/inference.h"

#include <gtest/gtest.h>

#include <cstdint>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/linear.h"

namespace sc {
namespace {

// Logits may differ from the training forward's by summation order only (the
// same kernels, but GEMMs of other row counts, and attention over the cache in
// other blocks): |a − b| <= kTolerance · max(1, |b|). Logits here are O(1..10).
constexpr double kTolerance = 2e-5;

enum class Kind { kDenseGrok, kMoeGrok, kMoeLlama };

// Tiny configs, max_position_embeddings 24, GQA 4:2 throughout.
//  - dense Grok: sandwich norms, soft-capping, multipliers, tied, gated GELU;
//  - MoE Grok: the same with 4 experts top-2 (and a capacity factor, which
//    inference must ignore: it never drops);
//  - MoE Llama: SwiGLU, untied, Mixtral's renormalized top-2, MoE on layer 0
//    and a dense layer 1.
ModelConfig make_config(Kind kind, double capacity_factor = 0.0) {
  nlohmann::json j = {{"vocab_size", 37}, {"hidden_size", 16}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"head_dim", 6},
                      {"intermediate_size", 24}, {"max_position_embeddings", 24}, {"rope_theta", 10000.0}};
  if (kind == Kind::kMoeLlama) {
    j.update({{"hidden_act", "silu"}, {"tie_word_embeddings", false}, {"num_experts", 4}, {"num_experts_per_tok", 2},
              {"router_renormalize", true}, {"moe_layer_frequency", 2}});
  } else {
    j.update({{"hidden_act", "gelu_pytorch_tanh"}, {"tie_word_embeddings", true}, {"sandwich_norm", true},
              {"attn_logit_softcapping", 2.0}, {"embedding_multiplier_scale", 3.0},
              {"output_multiplier_scale", 0.5773502691896257}, {"attn_output_multiplier", 0.3}});
    if (kind == Kind::kMoeGrok) j.update({{"num_experts", 4}, {"num_experts_per_tok", 2}});
  }
  if (capacity_factor > 0) j["capacity_factor"] = capacity_factor;
  auto config = ModelConfig::from_json(j, "tiny");
  EXPECT_TRUE(config.ok()) << config.status().message();
  return *config;
}

const char* kind_name(Kind kind) {
  return kind == Kind::kDenseGrok ? "dense grok" : kind == Kind::kMoeGrok ? "MoE grok" : "MoE llama";
}

// Weights large enough that attention is far from uniform and experts differ
// (init_weights' 0.02 would make every position look alike): matrices
// N(0, 0.5²), norm weights 1 + N(0, 0.1²).
void fill_weights(const std::vector<TensorSpec>& layout, float* params, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const TensorSpec& t : layout) {
    float* p = params + t.offset;
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = t.is_norm ? 1.0f + 0.1f * normal(gen) : 0.5f * normal(gen);
  }
}

uint32_t token_at(size_t sequence, size_t position, int64_t vocab) {
  return static_cast<uint32_t>((sequence * 31 + position * position * 7 + position + 1) % static_cast<size_t>(vocab));
}

// Training forward of B sequences of T tokens on random weights: its logits
// (times the output multiplier, which training applies inside the loss) are
// the reference.
struct Reference {
  static constexpr size_t B = 3, T = 20;
  ThreadPool pool{2};
  ModelConfig config;
  std::unique_ptr<Model> model;
  std::vector<uint32_t> tokens;

  PackedWeights packed;

  // weights: the format of the matrices the forward multiplies by (packed
  // from the fp32 parameters, as inference packs them).
  explicit Reference(const ModelConfig& c, WeightFormat weights = WeightFormat::kF32) : config(c) {
    ModelConfig training = c;
    training.capacity_factor = 0.0;  // the reference drops nothing either
    auto created = Model::create(training, B, T, pool);
    EXPECT_TRUE(created.ok()) << created.status().message();
    model = std::move(*created);
    fill_weights(model->layout(), model->params(), 7);
    if (weights != WeightFormat::kF32) {
      auto bound = bind_weights(c, model->layout(), model->params());
      EXPECT_TRUE(bound.ok());
      auto made = PackedWeights::create(c, *bound, weights, pool);
      EXPECT_TRUE(made.ok()) << made.status().message();
      packed = std::move(*made);
      model->set_forward_matrices(&packed.matrices());
    }
    tokens.resize(B * T);
    for (size_t b = 0; b < B; ++b) {
      for (size_t t = 0; t < T; ++t) tokens[b * T + t] = token_at(b, t, c.vocab_size);
    }
    std::vector<uint32_t> targets(B * T, 0);
    EXPECT_TRUE(model->forward(tokens.data(), targets.data()).ok());
  }
  const uint32_t* sequence(size_t b) const { return tokens.data() + b * T; }
  // Worst |logits − reference(b, t)| / max(1, |reference|).
  double difference(const float* logits, size_t b, size_t t) const {
    const size_t V = config.vocab_size;
    const float* raw = model->logits() + (b * T + t) * V;
    double worst = 0;
    for (size_t v = 0; v < V; ++v) {
      const double ref = static_cast<double>(raw[v] * static_cast<float>(config.output_multiplier_scale));
      worst = std::max(worst, std::fabs(logits[v] - ref) / std::max(1.0, std::fabs(ref)));
    }
    return worst;
  }
};

// Three prompts of 5, 11 and 1 tokens in slots 3, 0 and 2 of a 4-slot cache,
// prefilled in one call; then decoded together one token per step, each at
// its own position, until each reaches T (the batch shrinks as they finish).
// Every logits row is compared with the training forward at that position.
double prefill_then_decode_worst(Kind kind, size_t max_tokens, WeightFormat weights = WeightFormat::kF32) {
  Reference ref(make_config(kind, kind == Kind::kMoeGrok ? 1.0 : 0.0), weights);
  const ModelConfig& c = ref.config;
  const size_t V = c.vocab_size;
  auto inference = Inference::create(c, ref.model->params(), max_tokens, Reference::B, ref.pool, weights);
  EXPECT_TRUE(inference.ok()) << inference.status().message();
  auto cache = KvCache::create(c, 4, 24);
  EXPECT_TRUE(cache.ok()) << cache.status().message();
  const size_t prompt_length[Reference::B] = {5, 11, 1};
  const size_t slot[Reference::B] = {3, 0, 2};
  std::vector<Inference::Sequence> prompts;
  for (size_t b = 0; b < Reference::B; ++b) prompts.push_back({{ref.sequence(b), prompt_length[b]}, slot[b], 0});
  auto prefilled = (*inference)->prefill(*cache, prompts);
  EXPECT_TRUE(prefilled.ok()) << prefilled.status().message();
  if (!prefilled.ok()) return INFINITY;
  double worst = 0;
  for (size_t b = 0; b < Reference::B; ++b) worst = std::max(worst, ref.difference(*prefilled + b * V, b, prompt_length[b] - 1));
  size_t steps = 0;
  for (size_t step = 0;; ++step) {
    std::vector<uint32_t> tokens;
    std::vector<size_t> slots, positions, sequences;
    for (size_t b = 0; b < Reference::B; ++b) {
      const size_t position = prompt_length[b] + step;
      if (position >= Reference::T) continue;
      tokens.push_back(ref.sequence(b)[position]);
      slots.push_back(slot[b]);
      positions.push_back(position);
      sequences.push_back(b);
    }
    if (tokens.empty()) break;
    auto decoded = (*inference)->decode(*cache, tokens, slots, positions);
    EXPECT_TRUE(decoded.ok()) << decoded.status().message();
    if (!decoded.ok()) return INFINITY;
    for (size_t i = 0; i < tokens.size(); ++i) {
      worst = std::max(worst, ref.difference(*decoded + i * V, sequences[i], positions[i]));
    }
    ++steps;
  }
  EXPECT_EQ(steps, Reference::T - 1) << "the 1-token prompt decodes T − 1 steps";

  // The comparison can fail: the same token decoded one position off (its
  // key overwrites the cache there) is far from the reference.
  const size_t b = 1, position = 12;
  const uint32_t token = ref.sequence(b)[position];
  const size_t wrong_position = position + 1;
  auto wrong = (*inference)->decode(*cache, {&token, 1}, {&slot[b], 1}, {&wrong_position, 1});
  EXPECT_TRUE(wrong.ok());
  if (wrong.ok()) {
    const double off = ref.difference(*wrong, b, position);
    std::printf("  (one position off: difference %.2e)\n", off);
    EXPECT_GT(off, 1000 * kTolerance) << "a decode at the wrong position must not pass";
  }
  return worst;
}

TEST(Inference, BatchedRaggedDecodeMatchesTrainingForward) {
  for (Kind kind : {Kind::kDenseGrok, Kind::kMoeGrok, Kind::kMoeLlama}) {
    // One prefill forward (32 rows), then chunked prefills: 4 rows per
    // forward split the 11-token prompt over three forwards.
    for (size_t max_tokens : {32, 4}) {
      const double worst = prefill_then_decode_worst(kind, max_tokens);
      std::printf("  %s, max_tokens %zu: prefill + batched decode vs training forward, worst difference %.2e "
                  "(relative to max(1,|logit|); tolerance %.0e)\n",
                  kind_name(kind), max_tokens, worst, kTolerance);
      EXPECT_LE(worst, kTolerance) << kind_name(kind) << " max_tokens " << max_tokens;
    }
  }
}

// bf16 and int8: the inference path multiplies by the packed matrices
// everywhere (attention, dense and expert FFNs, the tied or untied head), as
// the training forward does when given the same packed matrices; and those
// differ from fp32 (else the test would not show packing happened).
TEST(Inference, PackedWeightsDecodeAsTheTrainingForwardWithTheSameMatrices) {
  for (WeightFormat weights : {WeightFormat::kBf16, WeightFormat::kInt8}) {
    for (Kind kind : {Kind::kDenseGrok, Kind::kMoeGrok, Kind::kMoeLlama}) {
      const double worst = prefill_then_decode_worst(kind, 32, weights);
      std::printf("  %s, %s weights: prefill + batched decode vs training forward on the same matrices, worst "
                  "difference %.2e (tolerance %.0e)\n",
                  kind_name(kind), weight_format_name(weights), worst, kTolerance);
      EXPECT_LE(worst, kTolerance) << kind_name(kind) << " " << weight_format_name(weights);

      Reference fp32(make_config(kind)), packed(make_config(kind), weights);
      double packing = 0;
      for (size_t t = 0; t < Reference::T; ++t) {
        const float* row = packed.model->logits() + t * packed.config.vocab_size;
        std::vector<float> scaled(row, row + packed.config.vocab_size);
        for (float& v : scaled) v *= static_cast<float>(packed.config.output_multiplier_scale);
        packing = std::max(packing, fp32.difference(scaled.data(), 0, t));
      }
      std::printf("    (%s logits vs fp32 logits: worst difference %.2e)\n", weight_format_name(weights), packing);
      EXPECT_GT(packing, 10 * kTolerance) << "packing changed nothing: " << weight_format_name(weights);
    }
  }
}

// A decoded token's logits are the same bits alone and in a batch larger
// than one forward's rows (kRowwiseMaxRows): the server's promise that a
// request's text never depends on the others in the batch.
TEST(Inference, ADecodedRowIsTheSameBitsAloneAndInAnyBatch) {
  const size_t slots = kRowwiseMaxRows + 9, watched = 20;
  for (WeightFormat weights : {WeightFormat::kF32, WeightFormat::kBf16, WeightFormat::kInt8}) {
    Reference ref(make_config(Kind::kMoeGrok));
    const ModelConfig& c = ref.config;
    const size_t V = c.vocab_size;
    auto inference = Inference::create(c, ref.model->params(), 64, slots, ref.pool, weights);
    ASSERT_TRUE(inference.ok()) << inference.status().message();
    auto batch_cache = KvCache::create(c, slots, 24), alone_cache = KvCache::create(c, slots, 24);
    ASSERT_TRUE(batch_cache.ok() && alone_cache.ok());
    std::vector<std::vector<uint32_t>> prompts(slots);
    std::vector<Inference::Sequence> sequences;
    std::vector<uint32_t> next;
    std::vector<size_t> slot_ids, positions;
    for (size_t s = 0; s < slots; ++s) {
      for (size_t t = 0; t < 1 + s % 3; ++t) prompts[s].push_back(token_at(s, t, c.vocab_size));
      sequences.push_back({prompts[s], s, 0});
      next.push_back(token_at(s, prompts[s].size(), c.vocab_size));
      slot_ids.push_back(s);
      positions.push_back(prompts[s].size());
    }
    ASSERT_TRUE((*inference)->prefill(*batch_cache, sequences).ok());
    ASSERT_TRUE((*inference)->prefill(*alone_cache, sequences).ok());
    auto batch = (*inference)->decode(*batch_cache, next, slot_ids, positions);
    ASSERT_TRUE(batch.ok()) << batch.status().message();
    const std::vector<float> batch_row(*batch + watched * V, *batch + (watched + 1) * V);
    auto alone = (*inference)->decode(*alone_cache, {&next[watched], 1}, {&slot_ids[watched], 1},
                                      {&positions[watched], 1});
    ASSERT_TRUE(alone.ok()) << alone.status().message();
    EXPECT_EQ(std::memcmp(batch_row.data(), *alone, V * sizeof(float)), 0) << weight_format_name(weights);
  }
}

TEST(Inference, PrefillEqualsTokenByToken) {
  for (Kind kind : {Kind::kDenseGrok, Kind::kMoeGrok, Kind::kMoeLlama}) {
    Reference ref(make_config(kind));
    const ModelConfig& c = ref.config;
    const size_t V = c.vocab_size, length = 17;
    auto inference = Inference::create(c, ref.model->params(), 32, 1, ref.pool);
    ASSERT_TRUE(inference.ok()) << inference.status().message();
    auto whole_cache = KvCache::create(c, 1, 24), step_cache = KvCache::create(c, 1, 24);
    ASSERT_TRUE(whole_cache.ok() && step_cache.ok());
    const Inference::Sequence prompt{{ref.sequence(2), length}, 0, 0};
    auto whole = (*inference)->prefill(*whole_cache, {&prompt, 1});
    ASSERT_TRUE(whole.ok()) << whole.status().message();
    const std::vector<float> whole_logits(*whole, *whole + V);
    const float* step_logits = nullptr;
    for (size_t t = 0; t < length; ++t) {
      const Inference::Sequence one{{ref.sequence(2) + t, 1}, 0, t};
      auto stepped = (*inference)->prefill(*step_cache, {&one, 1});
      ASSERT_TRUE(stepped.ok()) << stepped.status().message();
      step_logits = *stepped;
    }
    double worst = 0;
    for (size_t v = 0; v < V; ++v) {
      worst = std::max(worst, std::fabs(whole_logits[v] - step_logits[v]) / std::max(1.0, std::fabs(static_cast<double>(step_logits[v]))));
    }
    // Both caches hold the same keys and values, up to the same rounding.
    const size_t cache_floats = c.num_key_value_heads * c.head_dim * length;
    double worst_cache = 0;
    for (size_t l = 0; l < static_cast<size_t>(c.num_hidden_layers); ++l) {
      for (size_t i = 0; i < cache_floats; ++i) {
        for (auto part : {&KvCache::keys, &KvCache::values}) {
          const float a = ((*whole_cache).*part)(l)[i], b = ((*step_cache).*part)(l)[i];
          worst_cache = std::max(worst_cache, std::fabs(a - b) / std::max(1.0, std::fabs(static_cast<double>(b))));
        }
      }
    }
    std::printf("  %s: prefill of %zu tokens vs token by token, worst logit difference %.2e, worst cache "
                "difference %.2e (tolerance %.0e)\n",
                kind_name(kind), length, worst, worst_cache, kTolerance);
    EXPECT_LE(worst, kTolerance) << kind_name(kind);
    EXPECT_LE(worst_cache, kTolerance) << kind_name(kind);
    EXPECT_LE(ref.difference(whole_logits.data(), 2, length - 1), kTolerance) << kind_name(kind);
  }
}

TEST(Inference, ReadsTheWeightsItIsBoundTo) {
  // No copy: weights written into the buffer after create are the ones used
  // (a trainer can evaluate from its live weights).
  Reference ref(make_config(Kind::kDenseGrok));
  const ModelConfig& c = ref.config;
  auto inference = Inference::create(c, ref.model->params(), 8, 1, ref.pool);
  ASSERT_TRUE(inference.ok());
  auto cache = KvCache::create(c, 1, 24);
  ASSERT_TRUE(cache.ok());
  fill_weights(ref.model->layout(), ref.model->params(), 99);
  std::vector<uint32_t> targets(Reference::B * Reference::T, 0);
  ASSERT_TRUE(ref.model->forward(ref.tokens.data(), targets.data()).ok());
  const Inference::Sequence prompt{{ref.sequence(0), 6}, 0, 0};
  auto logits = (*inference)->prefill(*cache, {&prompt, 1});
  ASSERT_TRUE(logits.ok());
  EXPECT_LE(ref.difference(*logits, 0, 5), kTolerance);
}

TEST(Inference, BadRequestsAreErrorsThatNameTheProblem) {
  ThreadPool pool(1);
  const ModelConfig c = make_config(Kind::kDenseGrok);
  std::vector<float> params(static_cast<size_t>(parameter_buffer_floats(parameter_layout(c))), 0.01f);
  auto inference = Inference::create(c, params.data(), 8, 2, pool);
  ASSERT_TRUE(inference.ok());
  auto cache = KvCache::create(c, 2, 10);
  ASSERT_TRUE(cache.ok());
  const std::vector<uint32_t> tokens = {1, 2, 3, 4};
  auto expect_error = [&](std::vector<Inference::Sequence> sequences, const std::string& expected) {
    auto result = (*inference)->prefill(*cache, sequences);
    ASSERT_FALSE(result.ok()) << expected;
    EXPECT_NE(result.status().message().find(expected), std::string::npos) << result.status().message();
  };
  expect_error({{tokens, 2, 0}}, "slot 2 of 2");
  expect_error({{tokens, 0, 7}}, "4 tokens from position 7 exceed the KV cache's context 10");
  // A position so large that position + tokens wraps around is caught too.
  expect_error({{tokens, 0, SIZE_MAX - 1}}, "exceed the KV cache's context 10");
  expect_error({{tokens, 1, 0}, {tokens, 1, 4}}, "share slot 1");
  expect_error({{{}, 0, 0}}, "has no tokens");
  expect_error({{tokens, 0, 0}, {tokens, 1, 0}, {tokens, 1, 0}}, "3 sequences in one call; room for 2");
  const std::vector<uint32_t> bad = {1, 37};
  expect_error({{bad, 0, 0}}, "token id 37 >= vocab_size 37");
  const size_t slot = 0, position = 0;
  auto mismatched = (*inference)->decode(*cache, tokens, {&slot, 1}, {&position, 1});
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("4 tokens, 1 slots, 1 positions"), std::string::npos);
  auto too_long = KvCache::create(c, 1, 25);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("max_position_embeddings 24"), std::string::npos);
}

// Issue 15, item 2: generate sized its KV cache as L·T·KD in size_t,
// which wrapped for a large context and was then written out of bounds.
TEST(Inference, BuffersTheWordOrTheMachineCannotHoldAreClearErrors) {
  ThreadPool pool(1);
  const ModelConfig c = make_config(Kind::kDenseGrok);
  auto wrapped = KvCache::create(c, SIZE_MAX / 4, 24);
  ASSERT_FALSE(wrapped.ok());
  EXPECT_EQ(wrapped.status().message(),
            fmt::format("KV cache of {} slots x 24 positions: needs more than 2^64 bytes of memory", SIZE_MAX / 4));
  auto huge = KvCache::create(c, size_t{1} << 30, 24);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("KV cache of 1073741824 slots x 24 positions: needs 4947.80 GB of memory "
                                         "(4947802324992 bytes), more than this machine's"),
            std::string::npos) << huge.status().message();
  std::vector<float> params(static_cast<size_t>(parameter_buffer_floats(parameter_layout(c))), 0.01f);
  auto too_many = Inference::create(c, params.data(), size_t{1} << 25, 1, pool);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("at most 16777216"), std::string::npos) << too_many.status().message();
  ModelConfig edited = c;
  edited.max_position_embeddings = int64_t{1} << 62;
  EXPECT_FALSE(KvCache::create(edited, 1, 24).ok());
}

}  // namespace
}  // namespace sc
