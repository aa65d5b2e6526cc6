#include "model/moe.h"

#include <algorithm>
#include <cmath>

#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "kernels/matmul.h"

namespace sc {

ExpertMatrices fp32_expert_matrices(const MoeWeights& w) {
  ExpertMatrices m;
  for (size_t e = 0; e < w.w1.size(); ++e) {
    m.w1.push_back(WeightMatrix::f32(w.w1[e]));
    m.w3.push_back(WeightMatrix::f32(w.w3[e]));
    m.w2.push_back(WeightMatrix::f32(w.w2[e]));
  }
  return m;
}

void moe_forward(ThreadPool& pool, const MoeShape& s, const MoeWeights& w, const ExpertMatrices& experts,
                 const float* x, float* out, const MoeActivations& a, MoeStats* stats) {
  const size_t N = s.N, H = s.H, F = s.F, E = s.E, k = s.k;
  linear_forward(pool, a.router_logits, x, WeightMatrix::f32(w.router), N, E, H, false);

  // Softmax over experts and top-k per token (ties to the lower index).
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    for (size_t n = begin; n < end; ++n) {
      const float* r = a.router_logits + n * E;
      float* p = a.probs + n * E;
      float max_r = r[0];
      for (size_t e = 1; e < E; ++e) max_r = std::max(max_r, r[e]);
      double total = 0;
      for (size_t e = 0; e < E; ++e) total += std::exp(static_cast<double>(r[e] - max_r));
      for (size_t e = 0; e < E; ++e) p[e] = static_cast<float>(std::exp(static_cast<double>(r[e] - max_r)) / total);
      a.logsumexp[n] = static_cast<float>(max_r + std::log(total));
      float weight_sum = 0;
      for (size_t j = 0; j < k; ++j) {
        int32_t best = -1;
        for (size_t e = 0; e < E; ++e) {
          bool taken = false;
          for (size_t i = 0; i < j; ++i) taken |= a.experts[n * k + i] == static_cast<int32_t>(e);
          if (!taken && (best < 0 || p[e] > p[best])) best = static_cast<int32_t>(e);
        }
        a.experts[n * k + j] = best;
        a.weights[n * k + j] = p[best];
        weight_sum += p[best];
      }
      if (s.renormalize) {
        for (size_t j = 0; j < k; ++j) a.weights[n * k + j] /= weight_sum;
      }
    }
  });

  // Dispatch in token order: which assignments each expert keeps, and where
  // each lands in the expert-sorted buffers. Serial: O(N·k), and the order is
  // what makes the result independent of the thread count.
  stats->routed.assign(E, 0);
  for (size_t i = 0; i < N * k; ++i) stats->routed[static_cast<size_t>(a.experts[i])]++;
  const int64_t capacity = s.capacity_factor > 0
                               ? static_cast<int64_t>(std::ceil(s.capacity_factor * static_cast<double>(N * k) / E))
                               : static_cast<int64_t>(N * k);
  std::vector<int64_t> kept(E, 0);
  for (size_t i = 0; i < N * k; ++i) {
    int64_t& c = kept[static_cast<size_t>(a.experts[i])];
    a.rows[i] = c < capacity ? 0 : -1;
    if (c < capacity) ++c;
  }
  a.offsets[0] = 0;
  for (size_t e = 0; e < E; ++e) a.offsets[e + 1] = a.offsets[e] + static_cast<int32_t>(kept[e]);
  std::vector<int32_t> next(a.offsets, a.offsets + E);
  stats->dropped = 0;
  for (size_t i = 0; i < N * k; ++i) {
    if (a.rows[i] < 0) {
      a.weights[i] = 0.0f;
      ++stats->dropped;
      continue;
    }
    const int32_t row = next[static_cast<size_t>(a.experts[i])]++;
    a.rows[i] = row;
    a.row_tokens[row] = static_cast<int32_t>(i / k);
  }
  const size_t rows = static_cast<size_t>(a.offsets[E]);
  pool.parallel_for(rows, [&](size_t begin, size_t end, size_t) {
    for (size_t r = begin; r < end; ++r) {
      std::copy_n(x + static_cast<size_t>(a.row_tokens[r]) * H, H, a.x_sorted + r * H);
    }
  });

  // One GEMM per expert over its group of tokens.
  for (size_t e = 0; e < E; ++e) {
    const size_t off = static_cast<size_t>(a.offsets[e]), count = static_cast<size_t>(a.offsets[e + 1]) - off;
    if (count == 0) continue;
    linear_forward(pool, a.gate + off * F, a.x_sorted + off * H, experts.w1[e], count, F, H, false);
    linear_forward(pool, a.up + off * F, a.x_sorted + off * H, experts.w3[e], count, F, H, false);
    gated_activation_forward(pool, a.act + off * F, a.gate + off * F, a.up + off * F, count * F, s.act);
    linear_forward(pool, a.y_sorted + off * H, a.act + off * F, experts.w2[e], count, H, F, false);
  }

  // Combine in slot order.
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    for (size_t n = begin; n < end; ++n) {
      float* o = out + n * H;
      std::fill(o, o + H, 0.0f);
      for (size_t j = 0; j < k; ++j) {
        const int32_t row = a.rows[n * k + j];
        if (row < 0) continue;
        const float weight = a.weights[n * k + j];
        const float* y = a.y_sorted + static_cast<size_t>(row) * H;
        for (size_t h = 0; h < H; ++h) o[h] += weight * y[h];
      }
    }
  });

  // Auxiliary losses, in double, in token order.
  double aux = 0, z = 0;
  for (size_t e = 0; e < E; ++e) {
    double mean_prob = 0;
    for (size_t n = 0; n < N; ++n) mean_prob += a.probs[n * E + e];
    mean_prob /= static_cast<double>(N);
    aux += static_cast<double>(stats->routed[e]) / static_cast<double>(N * k) * mean_prob;
  }
  for (size_t n = 0; n < N; ++n) z += static_cast<double>(a.logsumexp[n]) * a.logsumexp[n];
  stats->aux_loss = static_cast<double>(E) * aux;
  stats->z_loss = z / static_cast<double>(N);
}

void moe_backward(ThreadPool& pool, const MoeShape& s, const MoeWeights& w, const MoeWeights& g, const float* x,
                  const float* dout, float* dx, const MoeActivations& a, const MoeStats& stats,
                  const MoeBackwardScratch& d, float aux_scale, float z_scale) {
  const size_t N = s.N, H = s.H, F = s.F, E = s.E, k = s.k;
  const size_t rows = static_cast<size_t>(a.offsets[E]);

  // Combine: d y_sorted = weight · dout; d weight = dout · y.
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    for (size_t n = begin; n < end; ++n) {
      const float* dy = dout + n * H;
      for (size_t j = 0; j < k; ++j) {
        const int32_t row = a.rows[n * k + j];
        d.d_weights[n * k + j] = 0.0f;
        if (row < 0) continue;
        const float* y = a.y_sorted + static_cast<size_t>(row) * H;
        float* dys = d.d_y_sorted + static_cast<size_t>(row) * H;
        const float weight = a.weights[n * k + j];
        float dot = 0;
        for (size_t h = 0; h < H; ++h) {
          dys[h] = weight * dy[h];
          dot += dy[h] * y[h];
        }
        d.d_weights[n * k + j] = dot;
      }
    }
  });

  // Experts.
  fill(pool, d.d_act, 0.0f, rows * F);
  fill(pool, d.d_gate, 0.0f, rows * F);
  fill(pool, d.d_up, 0.0f, rows * F);
  fill(pool, d.d_x_sorted, 0.0f, rows * H);
  for (size_t e = 0; e < E; ++e) {
    const size_t off = static_cast<size_t>(a.offsets[e]), count = static_cast<size_t>(a.offsets[e + 1]) - off;
    if (count == 0) continue;
    matmul_backward(pool, d.d_act + off * F, g.w2[e], d.d_y_sorted + off * H, a.act + off * F, w.w2[e], count, H, F);
    gated_activation_backward(pool, d.d_gate + off * F, d.d_up + off * F, d.d_act + off * F, a.gate + off * F,
                              a.up + off * F, count * F, s.act);
    matmul_backward(pool, d.d_x_sorted + off * H, g.w1[e], d.d_gate + off * F, a.x_sorted + off * H, w.w1[e], count,
                    F, H);
    matmul_backward(pool, d.d_x_sorted + off * H, g.w3[e], d.d_up + off * F, a.x_sorted + off * H, w.w3[e], count,
                    F, H);
  }

  // Un-dispatch into dx, and the router's gradient, per token.
  const double inv_n = 1.0 / static_cast<double>(N);
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    std::vector<double> dp(E);
    for (size_t n = begin; n < end; ++n) {
      float* dxn = dx + n * H;
      for (size_t j = 0; j < k; ++j) {
        const int32_t row = a.rows[n * k + j];
        if (row < 0) continue;
        const float* dxs = d.d_x_sorted + static_cast<size_t>(row) * H;
        for (size_t h = 0; h < H; ++h) dxn[h] += dxs[h];
      }
      const float* p = a.probs + n * E;
      std::fill(dp.begin(), dp.end(), 0.0);
      if (s.renormalize) {
        // w_j = p_j / S over the chosen experts: dp_j = (dw_j − Σ_i dw_i w_i) / S.
        double sum_p = 0, dot = 0;
        for (size_t j = 0; j < k; ++j) sum_p += p[a.experts[n * k + j]];
        for (size_t j = 0; j < k; ++j) dot += d.d_weights[n * k + j] * (p[a.experts[n * k + j]] / sum_p);
        for (size_t j = 0; j < k; ++j) dp[static_cast<size_t>(a.experts[n * k + j])] += (d.d_weights[n * k + j] - dot) / sum_p;
      } else {
        for (size_t j = 0; j < k; ++j) dp[static_cast<size_t>(a.experts[n * k + j])] += d.d_weights[n * k + j];
      }
      // Load balance: ∂(E Σ f_e P_e)/∂p[n,e] = E f_e / N.
      for (size_t e = 0; e < E; ++e) {
        dp[e] += aux_scale * static_cast<double>(E) * (static_cast<double>(stats.routed[e]) / static_cast<double>(N * k)) * inv_n;
      }
      double dot = 0;
      for (size_t e = 0; e < E; ++e) dot += dp[e] * p[e];
      // z-loss: ∂(mean lse²)/∂r[n,e] = 2 lse p[n,e] / N.
      const double z_term = z_scale * 2.0 * a.logsumexp[n] * inv_n;
      for (size_t e = 0; e < E; ++e) {
        d.d_logits[n * E + e] = static_cast<float>(p[e] * (dp[e] - dot) + z_term * p[e]);
      }
    }
  });
  matmul_backward(pool, dx, g.router, d.d_logits, x, w.router, N, E, H);
}

}  // namespace sc
