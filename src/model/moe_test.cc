#include "model/moe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace sc {
namespace {

// Buffers for one MoE layer of N tokens, kept by the test.
struct MoeBuffers {
  explicit MoeBuffers(const MoeShape& s)
      : logits(s.N * s.E), probs(s.N * s.E), lse(s.N), weights(s.N * s.k), x_sorted(s.N * s.k * s.H),
        gate(s.N * s.k * s.F), up(s.N * s.k * s.F), act(s.N * s.k * s.F), y_sorted(s.N * s.k * s.H),
        experts(s.N * s.k), rows(s.N * s.k), row_tokens(s.N * s.k), offsets(s.E + 1) {}
  MoeActivations view() {
    return {logits.data(), probs.data(), lse.data(), weights.data(), experts.data(), rows.data(),
            row_tokens.data(), offsets.data(), x_sorted.data(), gate.data(), up.data(), act.data(), y_sorted.data()};
  }
  std::vector<float> logits, probs, lse, weights, x_sorted, gate, up, act, y_sorted;
  std::vector<int32_t> experts, rows, row_tokens, offsets;
};

TEST(Moe, CapacityDropsLaterAssignmentsInTokenOrder) {
  ThreadPool pool(2);
  // 4 tokens, 2 experts, top-1; the router sends every token to expert 0
  // (x[:,0] > 0 and router row 0 reads x[:,0]), so with capacity factor 1
  // (2 per expert) tokens 2 and 3 are dropped and output exactly zero.
  MoeShape s{.N = 4, .H = 2, .F = 3, .E = 2, .k = 1, .renormalize = false, .capacity_factor = 1.0,
             .act = GatedActivation::kSilu};
  std::vector<float> x = {1, 0.5f, 2, -1, 3, 0.25f, 4, 1};
  std::vector<float> router = {1, 0, -1, 0};
  std::vector<std::vector<float>> w1(2, std::vector<float>(6, 0.3f)), w3(2, std::vector<float>(6, -0.2f)),
      w2(2, std::vector<float>(6, 0.7f));
  MoeWeights w{router.data(), {w1[0].data(), w1[1].data()}, {w3[0].data(), w3[1].data()}, {w2[0].data(), w2[1].data()}};
  MoeBuffers buffers(s);
  std::vector<float> out(8, 99.0f);
  MoeStats stats;
  moe_forward(pool, s, w, fp32_expert_matrices(w), x.data(), out.data(), buffers.view(), &stats);
  EXPECT_EQ(stats.routed, (std::vector<int64_t>{4, 0}));
  EXPECT_EQ(stats.dropped, 2);
  EXPECT_EQ(buffers.rows[2], -1);
  EXPECT_EQ(buffers.rows[3], -1);
  for (int h = 0; h < 2; ++h) {
    EXPECT_NE(out[0 * 2 + h], 0.0f);
    EXPECT_EQ(out[2 * 2 + h], 0.0f);
    EXPECT_EQ(out[3 * 2 + h], 0.0f);
  }
  // Everything routed to one expert: aux = E · f_0 · P_0 = 2 · 1 · mean p_0 > 1.
  EXPECT_GT(stats.aux_loss, 1.0);

  // Dropless: nothing dropped, every token gets an output.
  s.capacity_factor = 0;
  moe_forward(pool, s, w, fp32_expert_matrices(w), x.data(), out.data(), buffers.view(), &stats);
  EXPECT_EQ(stats.dropped, 0);
  for (int n = 0; n < 4; ++n) EXPECT_NE(out[n * 2], 0.0f) << "token " << n;
}

TEST(Moe, GradientWithCapacityMatchesFiniteDifferences) {
  ThreadPool pool(2);
  MoeShape s{.N = 6, .H = 4, .F = 5, .E = 3, .k = 2, .renormalize = true, .capacity_factor = 0.75,
             .act = GatedActivation::kGeluTanh};
  auto fill = [](size_t n, float scale, uint32_t seed) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = scale * std::sin(static_cast<float>(i * 7 + seed) * 1.3f);
    return v;
  };
  std::vector<float> x = fill(s.N * s.H, 1.0f, 1), router = fill(s.E * s.H, 1.5f, 2);
  std::vector<std::vector<float>> w1, w3, w2;
  for (size_t e = 0; e < s.E; ++e) {
    w1.push_back(fill(s.F * s.H, 0.5f, 10 + e));
    w3.push_back(fill(s.F * s.H, 0.5f, 20 + e));
    w2.push_back(fill(s.H * s.F, 0.5f, 30 + e));
  }
  auto weights_of = [&](std::vector<float>& r, auto& a, auto& b, auto& c) {
    MoeWeights w{r.data(), {}, {}, {}};
    for (size_t e = 0; e < s.E; ++e) {
      w.w1.push_back(a[e].data());
      w.w3.push_back(b[e].data());
      w.w2.push_back(c[e].data());
    }
    return w;
  };
  MoeWeights w = weights_of(router, w1, w3, w2);
  const std::vector<float> R = fill(s.N * s.H, 1.0f, 99);  // loss = Σ out·R + aux + z
  const float aux_coef = 0.3f, z_coef = 0.05f;
  MoeBuffers buffers(s);
  std::vector<float> out(s.N * s.H);
  MoeStats stats;
  auto loss = [&]() {
    moe_forward(pool, s, w, fp32_expert_matrices(w), x.data(), out.data(), buffers.view(), &stats);
    double l = aux_coef * stats.aux_loss + z_coef * stats.z_loss;
    for (size_t i = 0; i < out.size(); ++i) l += static_cast<double>(out[i]) * R[i];
    return l;
  };
  loss();
  ASSERT_GT(stats.dropped, 0) << "the case must exercise dropping";
  // Analytic gradients.
  std::vector<float> g_router(router.size(), 0.0f), dx(x.size(), 0.0f);
  std::vector<std::vector<float>> g1(s.E, std::vector<float>(s.F * s.H, 0.0f)), g3 = g1,
      g2(s.E, std::vector<float>(s.H * s.F, 0.0f));
  MoeWeights g = weights_of(g_router, g1, g3, g2);
  const size_t NK = s.N * s.k;
  std::vector<float> d_y(NK * s.H), d_xs(NK * s.H), d_act(NK * s.F), d_gate(NK * s.F), d_up(NK * s.F), d_w(NK),
      d_logits(s.N * s.E);
  MoeBackwardScratch scratch{d_y.data(), d_xs.data(), d_act.data(), d_gate.data(), d_up.data(), d_w.data(), d_logits.data()};
  moe_backward(pool, s, w, g, x.data(), R.data(), dx.data(), buffers.view(), stats, scratch, aux_coef, z_coef);

  double worst = 0;
  auto check = [&](const char* name, std::vector<float>& param, const std::vector<float>& analytic) {
    for (size_t i = 0; i < param.size(); ++i) {
      const float saved = param[i];
      param[i] = saved + 1e-3f;
      const double plus = loss();
      param[i] = saved - 1e-3f;
      const double minus = loss();
      param[i] = saved;
      const double numeric = (plus - minus) / 2e-3;
      worst = std::max(worst, std::abs(numeric - analytic[i]));
      EXPECT_NEAR(analytic[i], numeric, 1e-2 * std::max(1.0, std::abs(numeric))) << name << "[" << i << "]";
    }
  };
  check("router", router, g_router);
  check("x", x, dx);
  for (size_t e = 0; e < s.E; ++e) {
    check("w1", w1[e], g1[e]);
    check("w3", w3[e], g3[e]);
    check("w2", w2[e], g2[e]);
  }
  std::printf("MoE with %lld dropped assignments: worst |analytic - numeric| %.2e\n",
              static_cast<long long>(stats.dropped), worst);
}

}  // namespace
}  // namespace sc
