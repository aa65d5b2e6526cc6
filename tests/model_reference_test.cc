// The C++ model against the PyTorch reference (tests/reference/): logits,
// loss, every gradient, and the parameters after two clipped AdamW steps.
// Tolerances come from the fixture (tests/reference/README.md).
#include <gtest/gtest.h>

#include <cmath>

#include "model/model.h"
#include "model/safetensors.h"
#include "model/weights_io.h"
#include "train/adamw.h"

namespace sc {
namespace {

struct Worst {
  double diff = 0;
  std::string where;
};

// max |got - want| <= atol + rtol * max |want| over the tensor.
void expect_close(const std::string& what, const float* got, const std::vector<float>& want, double atol, double rtol,
                  Worst* worst) {
  double max_want = 0, max_diff = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_want = std::max(max_want, std::abs(static_cast<double>(want[i])));
    max_diff = std::max(max_diff, std::abs(static_cast<double>(got[i]) - want[i]));
  }
  const double relative = max_diff / std::max(max_want, 1e-30);
  if (relative > worst->diff) *worst = {relative, what};
  EXPECT_LE(max_diff, atol + rtol * max_want) << what << ": max diff " << max_diff << ", max |want| " << max_want;
}

double meta(const SafetensorsFile& f, const std::string& key) {
  auto v = f.metadata_double(key);
  EXPECT_TRUE(v.ok()) << key;
  return v.ok() ? *v : 0.0;
}

void check_fixture(const std::string& name) {
  const std::string dir = std::string(SUPERCLUSTER_SOURCE_DIR) + "/tests/fixtures/" + name;
  auto config = ModelConfig::load(dir + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status().message();
  auto state_or = SafetensorsFile::open(dir + "/state.safetensors");
  ASSERT_TRUE(state_or.ok()) << state_or.status().message();
  const SafetensorsFile& state = *state_or;
  auto tokens = state.read_u32("tokens");
  ASSERT_TRUE(tokens.ok());
  const auto& token_tensor = **state.get("tokens");
  const int64_t B = token_tensor.shape[0], T = token_tensor.shape[1];

  ThreadPool pool(2);
  auto created = Model::create(*config, B, T, pool);
  ASSERT_TRUE(created.ok()) << created.status().message();
  Model& model = **created;
  Status loaded = load_weights(dir + "/state.safetensors", model.layout(), model.params());
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  Worst worst;
  auto tol = [&](const std::string& key, double* atol, double* rtol) {
    *atol = meta(state, "tolerance." + key + ".atol");
    *rtol = meta(state, "tolerance." + key + ".rtol");
  };
  double atol, rtol;

  // Step 1: forward and backward on batch 1.
  auto targets = state.read_u32("targets");
  model.zero_grads();
  auto sums = model.forward(tokens->data(), targets->data());
  ASSERT_TRUE(sums.ok());
  // The loss is the total: cross-entropy plus the MoE auxiliary terms.
  const float ce = static_cast<float>(sums->loss_sum / static_cast<double>(sums->count));
  const float loss = static_cast<float>(ce + model.auxiliary_loss_term());
  tol("loss", &atol, &rtol);
  expect_close("loss", &loss, *state.read_f32("loss"), atol, rtol, &worst);
  if (state.find("aux_loss")) {
    const float aux = static_cast<float>(model.aux_loss()), z = static_cast<float>(model.z_loss());
    expect_close("ce_loss", &ce, *state.read_f32("ce_loss"), atol, rtol, &worst);
    expect_close("aux_loss", &aux, *state.read_f32("aux_loss"), atol, rtol, &worst);
    expect_close("z_loss", &z, *state.read_f32("z_loss"), atol, rtol, &worst);
    auto counts = state.read_u32("expert_counts");
    ASSERT_TRUE(counts.ok());
    std::vector<uint32_t> routed;
    for (const MoeStats& layer : model.moe_stats()) {
      for (int64_t c : layer.routed) routed.push_back(static_cast<uint32_t>(c));
    }
    EXPECT_EQ(routed, *counts) << "tokens per expert differ from the reference";
  }
  std::vector<float> logits(model.logits(), model.logits() + B * T * config->vocab_size);
  for (float& x : logits) x *= static_cast<float>(config->output_multiplier_scale);
  tol("logits", &atol, &rtol);
  expect_close("logits", logits.data(), *state.read_f32("logits"), atol, rtol, &worst);
  model.backward(1.0f / static_cast<float>(sums->count));
  tol("grad", &atol, &rtol);
  for (const TensorSpec& t : model.layout()) {
    expect_close("grad." + t.name, model.grads() + t.offset, *state.read_f32("grad." + t.name), atol, rtol, &worst);
  }
  const float norm = static_cast<float>(std::sqrt(sum_of_squares(model.grads(), model.num_floats(), pool)));
  tol("grad_norm", &atol, &rtol);
  expect_close("grad_norm", &norm, *state.read_f32("grad_norm"), atol, rtol, &worst);

  // Two clipped AdamW steps, the second on batch 2 at the updated parameters.
  ASSERT_DOUBLE_EQ(meta(state, "weight_decay_1d"), 0.0) << "the trainer never decays norm weights";
  ASSERT_DOUBLE_EQ(meta(state, "clip_eps"), 1e-6) << "clip_grad_norm uses torch's 1e-6";
  std::vector<float> m(model.num_floats()), v(model.num_floats());
  AdamW adamw({meta(state, "beta1"), meta(state, "beta2"), meta(state, "eps"), meta(state, "weight_decay")},
              decay_ranges(model.layout()), m.data(), v.data(), model.num_floats());
  const double lr = meta(state, "lr"), max_norm = meta(state, "max_grad_norm");
  adamw.update(model.params(), model.grads(), lr, 1, pool, clip_coefficient(norm, max_norm));

  auto tokens2 = state.read_u32("tokens2");
  auto targets2 = state.read_u32("targets2");
  model.zero_grads();
  auto sums2 = model.forward(tokens2->data(), targets2->data());
  ASSERT_TRUE(sums2.ok());
  const float loss2 = static_cast<float>(sums2->loss_sum / static_cast<double>(sums2->count) + model.auxiliary_loss_term());
  tol("loss", &atol, &rtol);
  expect_close("loss2", &loss2, *state.read_f32("loss2"), atol, rtol, &worst);
  model.backward(1.0f / static_cast<float>(sums2->count));
  tol("grad2", &atol, &rtol);
  for (const TensorSpec& t : model.layout()) {
    expect_close("grad2." + t.name, model.grads() + t.offset, *state.read_f32("grad2." + t.name), atol, rtol, &worst);
  }
  const double norm2 = std::sqrt(sum_of_squares(model.grads(), model.num_floats(), pool));
  adamw.update(model.params(), model.grads(), lr, 2, pool, clip_coefficient(norm2, max_norm));

  double sum_abs = 0, max_abs = 0;
  size_t count = 0;
  std::string max_where;
  for (const TensorSpec& t : model.layout()) {
    auto want = state.read_f32("adamw2." + t.name);
    ASSERT_TRUE(want.ok());
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double d = std::abs(static_cast<double>(model.params()[t.offset + i]) - (*want)[i]);
      sum_abs += d;
      ++count;
      if (d > max_abs) max_abs = d, max_where = t.name;
    }
  }
  const double mean_abs = sum_abs / static_cast<double>(count);
  EXPECT_LE(mean_abs, meta(state, "tolerance.adamw2_end_to_end.mean"));
  EXPECT_LE(max_abs, meta(state, "tolerance.adamw2_end_to_end.max")) << max_where;
  std::printf("%s vs PyTorch: worst relative diff %.2e (%s); after 2 AdamW steps mean |diff| %.2e, max %.2e (%s)\n",
              name.c_str(), worst.diff, worst.where.c_str(), mean_abs, max_abs, max_where.c_str());
}

TEST(ModelReference, GrokTinyMatchesPyTorch) { check_fixture("grok_tiny"); }
TEST(ModelReference, LlamaTinyMatchesPyTorch) { check_fixture("llama_tiny"); }
TEST(ModelReference, GrokMoeTinyMatchesPyTorch) { check_fixture("grok_moe_tiny"); }
TEST(ModelReference, MixtralMoeTinyMatchesPyTorch) { check_fixture("mixtral_moe_tiny"); }

}  // namespace
}  // namespace sc
