// The committed reference fixtures (tests/fixtures/<name>/, written by
// tests/reference/make_fixtures.py) are complete and agree with themselves:
// every parameter of the docs/model.md table is there with its gradients and
// its value after two AdamW steps, the loss follows from the stored logits,
// the gradient norms from the stored gradients, and adamw2 from the stored
// gradients and the optimizer settings in __metadata__. This checks the
// fixtures and the safetensors reader; the C++ model is compared against the
// same files in its own tests.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "model/safetensors.h"

namespace sc {
namespace {

constexpr uint32_t kIgnore = 0xFFFFFFFFu;
const char* const kFixtures[] = {"grok_tiny", "llama_tiny"};

std::string fixture_dir(const std::string& name) {
  return std::string(SUPERCLUSTER_SOURCE_DIR) + "/tests/fixtures/" + name;
}

// The sizes of docs/model.md, read from the fixture's config.json.
struct Dims {
  int64_t vocab = 0, hidden = 0, layers = 0, q_heads = 0, kv_heads = 0, head_dim = 0, ffn = 0;
  bool tied = false, sandwich = false;
};

Dims read_dims(const std::string& name) {
  std::ifstream in(fixture_dir(name) + "/config.json");
  EXPECT_TRUE(in.good()) << name << ": no config.json";
  nlohmann::json c = nlohmann::json::parse(in);
  Dims d;
  d.vocab = c.at("vocab_size").get<int64_t>();
  d.hidden = c.at("hidden_size").get<int64_t>();
  d.layers = c.at("num_hidden_layers").get<int64_t>();
  d.q_heads = c.at("num_attention_heads").get<int64_t>();
  d.kv_heads = c.at("num_key_value_heads").get<int64_t>();
  const bool has_head_dim = c.contains("head_dim") && !c["head_dim"].is_null();
  d.head_dim = has_head_dim ? c["head_dim"].get<int64_t>() : d.hidden / d.q_heads;  // default H / Hq
  d.ffn = c.at("intermediate_size").get<int64_t>();
  d.tied = c.at("tie_word_embeddings").get<bool>();
  d.sandwich = c.value("sandwich_norm", false);
  return d;
}

// The tensor-name table of docs/model.md, in its order.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_parameters(const Dims& d) {
  const int64_t q_dim = d.q_heads * d.head_dim, kv_dim = d.kv_heads * d.head_dim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out = {{"model.embed_tokens.weight", {d.vocab, d.hidden}}};
  for (int64_t l = 0; l < d.layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    out.push_back({p + "input_layernorm.weight", {d.hidden}});
    out.push_back({p + "self_attn.q_proj.weight", {q_dim, d.hidden}});
    out.push_back({p + "self_attn.k_proj.weight", {kv_dim, d.hidden}});
    out.push_back({p + "self_attn.v_proj.weight", {kv_dim, d.hidden}});
    out.push_back({p + "self_attn.o_proj.weight", {d.hidden, q_dim}});
    out.push_back({p + "post_attention_layernorm.weight", {d.hidden}});
    if (d.sandwich) {
      out.push_back({p + "pre_feedforward_layernorm.weight", {d.hidden}});
      out.push_back({p + "post_feedforward_layernorm.weight", {d.hidden}});
    }
    out.push_back({p + "mlp.gate_proj.weight", {d.ffn, d.hidden}});
    out.push_back({p + "mlp.up_proj.weight", {d.ffn, d.hidden}});
    out.push_back({p + "mlp.down_proj.weight", {d.hidden, d.ffn}});
  }
  out.push_back({"model.norm.weight", {d.hidden}});
  if (!d.tied) out.push_back({"lm_head.weight", {d.vocab, d.hidden}});
  return out;
}

SafetensorsFile open_state(const std::string& name) {
  Result<SafetensorsFile> file = SafetensorsFile::open(fixture_dir(name) + "/state.safetensors");
  EXPECT_TRUE(file.ok()) << file.status().message();
  return std::move(file).value();
}

std::vector<float> f32(const SafetensorsFile& file, const std::string& name) {
  Result<std::vector<float>> values = file.read_f32(name);
  EXPECT_TRUE(values.ok()) << values.status().message();
  return values.ok() ? *values : std::vector<float>();
}

double meta(const SafetensorsFile& file, const std::string& key) {
  Result<double> value = file.metadata_double(key);
  EXPECT_TRUE(value.ok()) << value.status().message();
  return value.ok() ? *value : NAN;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, sep);) out.push_back(item);
  return out;
}

TEST(ReferenceFixture, ParametersFollowTheDocTable) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    const Dims dims = read_dims(name);
    const SafetensorsFile file = open_state(name);
    const auto expected = expected_parameters(dims);

    std::vector<std::string> listed = split(*file.metadata_value("parameters"), ',');
    ASSERT_EQ(listed.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      const auto& [param, shape] = expected[i];
      EXPECT_EQ(listed[i], param) << "parameter order differs from the docs/model.md table at " << i;
      for (const std::string prefix : {"", "grad.", "grad2.", "adamw2."}) {
        const TensorView* t = file.find(prefix + param);
        ASSERT_NE(t, nullptr) << "missing " << prefix + param;
        EXPECT_EQ(t->dtype, DType::kF32) << prefix + param;
        EXPECT_EQ(t->shape, shape) << prefix + param;
        for (float v : f32(file, prefix + param)) ASSERT_TRUE(std::isfinite(v)) << prefix + param;
      }
    }
    // Nothing else is in the file.
    std::set<std::string> known = {"tokens", "targets", "tokens2",    "targets2",  "logits",
                                   "loss",   "loss2",   "grad_norm", "grad_norm2"};
    for (const auto& [param, shape] : expected) {
      for (const std::string prefix : {"", "grad.", "grad2.", "adamw2."}) known.insert(prefix + param);
    }
    EXPECT_EQ(file.tensors().size(), known.size());
    for (const TensorView& t : file.tensors()) EXPECT_TRUE(known.count(t.name)) << "unexpected tensor " << t.name;
  }
}

TEST(ReferenceFixture, BatchesAreValid) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    const Dims dims = read_dims(name);
    const SafetensorsFile file = open_state(name);
    EXPECT_EQ(meta(file, "ignore_index"), kIgnore);
    for (const std::string suffix : {"", "2"}) {
      const TensorView* tokens = *file.get("tokens" + suffix);
      const TensorView* targets = *file.get("targets" + suffix);
      EXPECT_EQ(tokens->dtype, DType::kU32);
      EXPECT_EQ(targets->dtype, DType::kU32);
      ASSERT_EQ(tokens->shape.size(), 2u);
      EXPECT_EQ(targets->shape, tokens->shape);
      int ignored = 0;
      const std::vector<uint32_t> token_values = *file.read_u32("tokens" + suffix);
      const std::vector<uint32_t> target_values = *file.read_u32("targets" + suffix);
      for (uint32_t t : token_values) EXPECT_LT(t, dims.vocab);
      for (uint32_t t : target_values) {
        if (t == kIgnore) {
          ++ignored;
        } else {
          EXPECT_LT(t, dims.vocab);
        }
      }
      EXPECT_GT(ignored, 0) << "the fixture must exercise ignore_index";
      EXPECT_LT(ignored, targets->element_count());
    }
    const TensorView* logits = *file.get("logits");
    EXPECT_EQ(logits->shape, std::vector<int64_t>({(*file.get("tokens"))->shape[0],
                                                   (*file.get("tokens"))->shape[1], dims.vocab}));
  }
}

TEST(ReferenceFixture, LossFollowsFromLogits) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    const Dims dims = read_dims(name);
    const SafetensorsFile file = open_state(name);
    const std::vector<float> logits = f32(file, "logits");
    const std::vector<uint32_t> targets = *file.read_u32("targets");
    ASSERT_EQ(logits.size(), targets.size() * static_cast<size_t>(dims.vocab));
    // Mean of -log softmax(logits)[target] over counted positions, in double.
    double total = 0;
    int counted = 0;
    for (size_t i = 0; i < targets.size(); ++i) {
      if (targets[i] == kIgnore) continue;
      const float* row = logits.data() + i * dims.vocab;
      double top = row[0];
      for (int64_t v = 1; v < dims.vocab; ++v) top = std::max(top, static_cast<double>(row[v]));
      double sum = 0;
      for (int64_t v = 0; v < dims.vocab; ++v) sum += std::exp(row[v] - top);
      total += top + std::log(sum) - row[targets[i]];
      ++counted;
    }
    const double loss = total / counted;
    const std::vector<float> stored = f32(file, "loss");
    ASSERT_EQ(stored.size(), 1u);
    // The stored loss comes from float64 logits, these are rounded to float32.
    EXPECT_NEAR(loss, stored[0], 1e-6 * std::fabs(loss)) << "recomputed " << loss << " stored " << stored[0];
    EXPECT_GT(loss, 0.5 * std::log(static_cast<double>(dims.vocab)));
    EXPECT_LT(loss, 2.0 * std::log(static_cast<double>(dims.vocab)));
  }
}

TEST(ReferenceFixture, GradNormsFollowFromGrads) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    const SafetensorsFile file = open_state(name);
    const std::vector<std::string> params = split(*file.metadata_value("parameters"), ',');
    for (const std::string step : {"", "2"}) {
      double squares = 0;
      for (const std::string& p : params) {
        for (float g : f32(file, "grad" + step + "." + p)) squares += static_cast<double>(g) * g;
      }
      const double stored = f32(file, "grad_norm" + step).at(0);
      EXPECT_NEAR(std::sqrt(squares), stored, 1e-6 * stored) << "grad_norm" << step;
    }
  }
}

// AdamW as README.md states it (torch.optim.AdamW and clip_grad_norm_), in
// double, fed with the stored gradients: it must land on adamw2.
TEST(ReferenceFixture, Adamw2FollowsFromStoredGradsAndMetadata) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    const SafetensorsFile file = open_state(name);
    const double lr = meta(file, "lr"), beta1 = meta(file, "beta1"), beta2 = meta(file, "beta2");
    const double eps = meta(file, "eps"), weight_decay = meta(file, "weight_decay");
    const double weight_decay_1d = meta(file, "weight_decay_1d"), max_norm = meta(file, "max_grad_norm");
    const double clip_eps = meta(file, "clip_eps");
    ASSERT_EQ(meta(file, "adamw_steps"), 2);
    EXPECT_EQ(*file.metadata_value("lr_schedule"), "constant");
    const std::vector<std::string> params = split(*file.metadata_value("parameters"), ',');

    std::map<std::string, std::vector<double>> value, m, v;
    for (const std::string& p : params) {
      std::vector<float> start = f32(file, p);
      value[p].assign(start.begin(), start.end());
      m[p].assign(start.size(), 0.0);
      v[p].assign(start.size(), 0.0);
    }
    for (int step = 1; step <= 2; ++step) {
      const std::string grad_prefix = step == 1 ? "grad." : "grad2.";
      std::map<std::string, std::vector<float>> grads;
      double squares = 0;
      for (const std::string& p : params) {
        grads[p] = f32(file, grad_prefix + p);
        for (float g : grads[p]) squares += static_cast<double>(g) * g;
      }
      const double clip = std::min(1.0, max_norm / (std::sqrt(squares) + clip_eps));
      const double bias1 = 1 - std::pow(beta1, step), bias2 = 1 - std::pow(beta2, step);
      for (const std::string& p : params) {
        const double decay = (*file.get(p))->shape.size() >= 2 ? weight_decay : weight_decay_1d;
        for (size_t i = 0; i < value[p].size(); ++i) {
          const double g = grads[p][i] * clip;
          value[p][i] *= 1 - lr * decay;
          m[p][i] = beta1 * m[p][i] + (1 - beta1) * g;
          v[p][i] = beta2 * v[p][i] + (1 - beta2) * g * g;
          value[p][i] -= lr / bias1 * m[p][i] / (std::sqrt(v[p][i]) / std::sqrt(bias2) + eps);
        }
      }
    }
    const double atol = meta(file, "tolerance.adamw2_from_stored_grads.atol");
    const double rtol = meta(file, "tolerance.adamw2_from_stored_grads.rtol");
    double worst = 0;
    std::string worst_name;
    for (const std::string& p : params) {
      const std::vector<float> want = f32(file, "adamw2." + p);
      const std::vector<float> start = f32(file, p);
      double scale = 0, diff = 0, moved = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
        diff = std::max(diff, std::fabs(value[p][i] - want[i]));
        moved = std::max(moved, std::fabs(static_cast<double>(want[i]) - start[i]));
      }
      EXPECT_LE(diff, atol + rtol * scale) << p;
      EXPECT_GT(moved, 0.1 * lr) << p << " did not move";
      if (diff > worst) {
        worst = diff;
        worst_name = p;
      }
    }
    std::printf("%s: adamw2 recomputed from stored grads, worst |diff| %.2e (%s)\n", name, worst, worst_name.c_str());
  }
}

TEST(ReferenceFixture, MetadataStatesToleranceAndProvenance) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    const SafetensorsFile file = open_state(name);
    EXPECT_EQ(*file.metadata_value("fixture"), name);
    EXPECT_EQ(*file.metadata_value("compute_dtype"), "float64");
    for (const char* key : {"logits", "loss", "grad_norm", "grad", "grad2", "adamw2_from_stored_grads"}) {
      EXPECT_GE(meta(file, fmt::format("tolerance.{}.atol", key)), 0) << key;
      EXPECT_GE(meta(file, fmt::format("tolerance.{}.rtol", key)), 0) << key;
    }
    EXPECT_GT(meta(file, "tolerance.adamw2_end_to_end.mean"), 0);
    EXPECT_GT(meta(file, "tolerance.adamw2_end_to_end.max"), 0);
  }
}

}  // namespace
}  // namespace sc
