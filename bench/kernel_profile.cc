// kernel_profile: where one supercluster training step spends its time.
//
// perf's hardware counters are not available in these VMs, so this harness
// replays the kernel calls of Model::forward / Model::backward
// (src/model/model.cc) and the optimizer of the trainer, in the same order,
// with the same shapes and the same ThreadPool, and times each call. Every
// row says how many FLOPs (matmuls, attention) or bytes (the rest) the call
// moves, and how far that is from this process's measured sgemm peak and
// from a measured memory copy rate.
//
// A second table times each distinct linear-layer shape three ways: the
// library's matmul_forward / matmul_backward (one single-threaded sgemm per
// pool thread on a slice), the dx and dW halves of the backward separately,
// and one OpenBLAS call with OpenBLAS's own 2 threads (what PyTorch does).
//
// The replay mirrors model.cc as of this writing (dense layers; sandwich
// norms supported); if model.cc changes order or kernels, update it here.
// A benchmark: it prints figures and asserts nothing.
#include <cblas.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/cpu_tuning.h"
#include "core/thread_pool.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/peak.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "model/config.h"
#include "model/counts.h"
#include "model/model.h"
#include "train/adamw.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Row {
  std::string phase;  // forward, backward, optimizer
  std::string shape;
  double seconds = 0;
  double flops = 0;  // 0: memory-bound, use bytes
  double bytes = 0;
  int64_t calls = 0;
  int order = 0;
};

class Profile {
 public:
  template <class Fn>
  void time(const std::string& phase, const std::string& name, const std::string& shape, double flops,
            double bytes, Fn&& fn) {
    const auto t0 = Clock::now();
    fn();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!recording_) return;
    auto [it, inserted] = rows_.try_emplace(phase + "|" + name);
    Row& r = it->second;
    if (inserted) {
      r.phase = phase;
      r.shape = shape;
      r.order = next_order_++;
    }
    r.seconds += s;
    r.flops += flops;
    r.bytes += bytes;
    r.calls += 1;
  }
  void set_recording(bool on) { recording_ = on; }
  const std::map<std::string, Row>& rows() const { return rows_; }

 private:
  bool recording_ = false;
  int next_order_ = 0;
  std::map<std::string, Row> rows_;
};

std::string mnk(size_t M, size_t N, size_t K) { return fmt::format("M{} N{} K{}", M, N, K); }

// Executed multiply-add FLOPs of the blocked causal attention kernels
// (src/kernels/attention.cc): per (b, query head), query blocks of 64 rows
// against keys [0, i1). Forward: QKᵀ and PV (2 GEMMs); backward: QKᵀ again,
// dO Vᵀ, Pᵀ dO, dS K, dSᵀ Q (5 GEMMs).
double attention_gemm_flops(const sc::AttentionShape& a, int gemms) {
  double f = 0;
  for (size_t i0 = 0; i0 < a.T; i0 += sc::kAttentionQueryBlock) {
    const size_t i1 = std::min(a.T, i0 + sc::kAttentionQueryBlock);
    f += 2.0 * double(i1 - i0) * double(i1) * double(a.D) * gemms;
  }
  return f * double(a.B * a.Hq);
}

double time_best(int repeats, const std::function<void()>& fn) {
  fn();
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

int fail(const sc::Status& status) {
  std::fprintf(stderr, "kernel_profile: %s\n", status.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cpu_tuning = sc::tune_cpu_environment(argv);  // may re-execute

  std::string config_name = "gpt2-124m";
  int64_t batch = 4, seq_len = 256, threads = 2, steps = 2;
  bool pin = false, skip_shapes = false;
  CLI::App app{"Per-kernel time of one supercluster training step"};
  app.add_option("--config", config_name, "Preset name or config.json path")->capture_default_str();
  app.add_option("--batch-size", batch, "Sequences per step")->capture_default_str();
  app.add_option("--seq-len", seq_len, "Tokens per sequence")->capture_default_str();
  app.add_option("--threads", threads, "Threads of the one pool")->capture_default_str();
  app.add_option("--steps", steps, "Profiled steps (after one warmup step)")->capture_default_str();
  app.add_flag("--pin", pin, "Pin pool threads to cores");
  app.add_flag("--no-shapes", skip_shapes, "Skip the per-shape matmul table");
  CLI11_PARSE(app, argc, argv);

  sc::Result<sc::ModelConfig> config_or = sc::ModelConfig::resolve(config_name);
  if (!config_or.ok()) return fail(config_or.status());
  const sc::ModelConfig& c = *config_or;
  if (c.is_moe()) return fail(sc::Status::invalid("kernel_profile replays dense models only"));

  sc::ThreadPool pool(static_cast<size_t>(threads), pin);
  sc::blas_init_single_threaded();
  fmt::print("kernel_profile: {}, batch {} x {}, {} threads\n  {}\n  BLAS: {}\n", config_name, batch, seq_len,
             threads, cpu_tuning, sc::blas_description());

  // Parameters and gradients from a Model (its layout and init); activations here.
  auto model_or = sc::Model::create(c, batch, seq_len, pool);
  if (!model_or.ok()) return fail(model_or.status());
  sc::Model& model = **model_or;
  model.init_weights(1337);
  auto w_or = sc::bind_weights(c, model.layout(), model.params());
  auto g_or = sc::bind_weights(c, model.layout(), model.grads());
  if (!w_or.ok()) return fail(w_or.status());
  const sc::ModelWeights& W = *w_or;
  sc::ModelWeights& G = *g_or;

  const size_t B = batch, T = seq_len, N = B * T, H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const size_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, D = c.head_dim, L = c.num_hidden_layers;
  const size_t QD = Hq * D, KD = Hkv * D;
  const float eps = float(c.rms_norm_eps);
  const bool sandwich = c.sandwich_norm;
  auto act_or = sc::gated_activation_from_name(sc::activation_name(c.hidden_act));
  const sc::GatedActivation act = *act_or;
  const sc::AttentionShape ashape{B, T, Hq, Hkv, D, float(c.attn_output_multiplier), float(c.attn_logit_softcapping)};

  struct LayerActs {
    float *x_in, *attn_normed, *attn_rstd, *q, *k, *v, *attn_out, *lse, *o, *o_rstd, *h_mid;
    float *ffn_normed, *ffn_rstd, *gate, *up, *act, *y, *y_rstd;
  };
  std::vector<LayerActs> acts(L);
  std::vector<std::pair<float**, size_t>> plan;
  for (auto& a : acts) {
    plan.insert(plan.end(), {{&a.x_in, N * H}, {&a.attn_normed, N * H}, {&a.attn_rstd, N}, {&a.q, N * QD},
                             {&a.k, N * KD}, {&a.v, N * KD}, {&a.attn_out, N * QD}, {&a.lse, N * Hq},
                             {&a.h_mid, N * H}, {&a.ffn_normed, N * H}, {&a.ffn_rstd, N}, {&a.gate, N * F},
                             {&a.up, N * F}, {&a.act, N * F}, {&a.o, N * H}, {&a.o_rstd, N}, {&a.y, N * H},
                             {&a.y_rstd, N}});
  }
  float *x_final, *final_normed, *final_rstd, *logits, *row_loss, *row_lse, *rope_cos, *rope_sin, *attn_scratch,
      *norm_scratch, *d_residual, *d_normed, *d_branch, *d_q, *d_k, *d_v, *d_attn_out, *d_gate, *d_up, *d_act, *m,
      *v, *copy_src, *copy_dst;
  const size_t n_params = model.num_floats();
  const size_t copy_floats = N * V;  // the size of the logits: the biggest stream of the step
  plan.insert(plan.end(), {{&x_final, N * H}, {&final_normed, N * H}, {&final_rstd, N}, {&logits, N * V},
                           {&row_loss, N}, {&row_lse, N}, {&rope_cos, T * D / 2}, {&rope_sin, T * D / 2},
                           {&attn_scratch, sc::attention_scratch_floats(T, pool.num_threads())},
                           {&norm_scratch, sc::rmsnorm_backward_scratch_floats(N, H)}, {&d_residual, N * H},
                           {&d_normed, N * H}, {&d_branch, N * H}, {&d_q, N * QD}, {&d_k, N * KD}, {&d_v, N * KD},
                           {&d_attn_out, N * QD}, {&d_gate, N * F}, {&d_up, N * F}, {&d_act, N * F},
                           {&m, n_params}, {&v, n_params}, {&copy_src, copy_floats}, {&copy_dst, copy_floats}});
  size_t bytes = 0;
  for (const auto& [ptr, floats] : plan) bytes += (floats * sizeof(float) + 63) / 64 * 64;
  auto arena_or = sc::Arena::create(bytes, "profile");
  if (!arena_or.ok()) return fail(arena_or.status());
  sc::Arena arena = std::move(arena_or).value();
  for (const auto& [ptr, floats] : plan) *ptr = arena.allocate<float>(floats).value();
  sc::rope_tables_fill(rope_cos, rope_sin, T, D, c.rope_theta);
  std::fill(copy_src, copy_src + copy_floats, 1.0f);

  std::vector<sc::DecayRange> ranges;
  for (const sc::TensorSpec& t : model.layout()) {
    ranges.push_back({size_t(t.offset), size_t(t.offset + t.numel()), !t.is_norm});
  }
  sc::AdamW adamw(sc::AdamWConfig{0.9, 0.95, 1e-8, 0.1}, std::move(ranges), m, v, n_params);

  std::vector<uint32_t> tokens(N), targets(N);
  std::mt19937_64 gen(1337);
  std::uniform_int_distribution<uint32_t> dist(0, uint32_t(V - 1));
  for (size_t i = 0; i < N; ++i) tokens[i] = dist(gen), targets[i] = dist(gen);

  // Peak and copy rate before and after the profiled steps, best of both.
  double peak = sc::measure_matmul_peak_gflops(pool);
  auto copy_rate = [&] {
    return 2.0 * copy_floats * 4 / time_best(3, [&] { sc::copy(pool, copy_dst, copy_src, copy_floats); }) / 1e9;
  };
  double copy_gbs = copy_rate();

  Profile P;
  const double fl = 4.0;  // bytes per float
  auto mm_fwd = [&](const char* name, float* out, const float* x, const float* w, size_t M, size_t Nn, size_t K,
                    bool acc) {
    P.time("forward", name, mnk(M, Nn, K), 2.0 * M * Nn * K, 0,
           [&] { sc::matmul_forward(pool, out, x, w, M, Nn, K, acc); });
  };
  auto mm_bwd = [&](const char* name, float* dx, float* dw, const float* dy, const float* x, const float* w, size_t M,
                    size_t Nn, size_t K) {
    P.time("backward", name, mnk(M, Nn, K), 4.0 * M * Nn * K, 0,
           [&] { sc::matmul_backward(pool, dx, dw, dy, x, w, M, Nn, K); });
  };
  auto mem = [&](const char* phase, const char* name, double floats_moved, const std::function<void()>& fn) {
    P.time(phase, name, "", 0, floats_moved * fl, fn);
  };

  double loss_sum = 0;
  size_t loss_count = 0;
  for (int64_t step = 0; step < steps + 1; ++step) {
    P.set_recording(step > 0);
    const auto step_t0 = Clock::now();
    mem("optimizer", "zero_grads (fill)", n_params, [&] { sc::fill(pool, model.grads(), 0.0f, n_params); });
    // ---------------------------------------------------------------- forward
    mem("forward", "embedding_forward", 2.0 * N * H, [&] {
      (void)sc::embedding_forward(pool, acts[0].x_in, tokens.data(), W.embedding, N, V, H,
                                  float(c.embedding_multiplier_scale));
    });
    for (size_t l = 0; l < L; ++l) {
      LayerActs& a = acts[l];
      const sc::LayerWeights& w = W.layers[l];
      mem("forward", "rmsnorm_forward", 2.0 * N * H,
          [&] { sc::rmsnorm_forward(pool, a.attn_normed, a.attn_rstd, a.x_in, w.attn_norm, N, H, eps); });
      mm_fwd("matmul q", a.q, a.attn_normed, w.wq, N, QD, H, false);
      mm_fwd("matmul k", a.k, a.attn_normed, w.wk, N, KD, H, false);
      mm_fwd("matmul v", a.v, a.attn_normed, w.wv, N, KD, H, false);
      mem("forward", "rope_forward q,k", 2.0 * N * (QD + KD), [&] {
        sc::rope_forward(pool, a.q, rope_cos, rope_sin, N, T, Hq, D);
        sc::rope_forward(pool, a.k, rope_cos, rope_sin, N, T, Hkv, D);
      });
      P.time("forward", "attention_forward", fmt::format("B{} T{} Hq{} D{}", B, T, Hq, D),
             attention_gemm_flops(ashape, 2), 0,
             [&] { sc::attention_forward(pool, a.attn_out, a.lse, a.q, a.k, a.v, ashape, attn_scratch); });
      if (sandwich) {
        mm_fwd("matmul o", a.o, a.attn_out, w.wo, N, H, QD, false);
        mem("forward", "rmsnorm_forward", 2.0 * N * H,
            [&] { sc::rmsnorm_forward(pool, a.h_mid, a.o_rstd, a.o, w.attn_out_norm, N, H, eps); });
        mem("forward", "add_inplace", 3.0 * N * H, [&] { sc::add_inplace(pool, a.h_mid, a.x_in, N * H); });
      } else {
        mem("forward", "copy (residual)", 2.0 * N * H, [&] { sc::copy(pool, a.h_mid, a.x_in, N * H); });
        mm_fwd("matmul o (+=)", a.h_mid, a.attn_out, w.wo, N, H, QD, true);
      }
      float* x_out = (l + 1 < L) ? acts[l + 1].x_in : x_final;
      mem("forward", "rmsnorm_forward", 2.0 * N * H,
          [&] { sc::rmsnorm_forward(pool, a.ffn_normed, a.ffn_rstd, a.h_mid, w.ffn_norm, N, H, eps); });
      mm_fwd("matmul gate", a.gate, a.ffn_normed, w.w_gate, N, F, H, false);
      mm_fwd("matmul up", a.up, a.ffn_normed, w.w_up, N, F, H, false);
      mem("forward", "gated_activation_forward", 3.0 * N * F,
          [&] { sc::gated_activation_forward(pool, a.act, a.gate, a.up, N * F, act); });
      if (sandwich) {
        mm_fwd("matmul down", a.y, a.act, w.w_down, N, H, F, false);
        mem("forward", "rmsnorm_forward", 2.0 * N * H,
            [&] { sc::rmsnorm_forward(pool, x_out, a.y_rstd, a.y, w.ffn_out_norm, N, H, eps); });
        mem("forward", "add_inplace", 3.0 * N * H, [&] { sc::add_inplace(pool, x_out, a.h_mid, N * H); });
      } else {
        mem("forward", "copy (residual)", 2.0 * N * H, [&] { sc::copy(pool, x_out, a.h_mid, N * H); });
        mm_fwd("matmul down (+=)", x_out, a.act, w.w_down, N, H, F, true);
      }
    }
    mem("forward", "rmsnorm_forward", 2.0 * N * H,
        [&] { sc::rmsnorm_forward(pool, final_normed, final_rstd, x_final, W.final_norm, N, H, eps); });
    mm_fwd("matmul lm_head", logits, final_normed, W.output, N, V, H, false);
    mem("forward", "cross_entropy_forward", 2.0 * N * V, [&] {
      auto s = sc::cross_entropy_forward(pool, logits, targets.data(), N, V, float(c.output_multiplier_scale),
                                         row_loss, row_lse);
      loss_sum = s->loss_sum;
      loss_count = s->count;
    });
    // --------------------------------------------------------------- backward
    const float dloss = float(1.0 / double(loss_count));
    mem("backward", "cross_entropy_backward", 2.0 * N * V, [&] {
      sc::cross_entropy_backward(pool, logits, targets.data(), row_lse, N, V, float(c.output_multiplier_scale), dloss);
    });
    mem("backward", "fill (zero d buffers)", N * H, [&] { sc::fill(pool, d_normed, 0.0f, N * H); });
    mm_bwd("matmul_backward lm_head", d_normed, G.output, logits, final_normed, W.output, N, V, H);
    mem("backward", "fill (zero d buffers)", N * H, [&] { sc::fill(pool, d_residual, 0.0f, N * H); });
    mem("backward", "rmsnorm_backward", 4.0 * N * H, [&] {
      sc::rmsnorm_backward(pool, d_residual, G.final_norm, d_normed, x_final, W.final_norm, final_rstd, N, H,
                           norm_scratch);
    });
    for (size_t l = L; l-- > 0;) {
      const LayerActs& a = acts[l];
      const sc::LayerWeights& w = W.layers[l];
      sc::LayerWeights& g = G.layers[l];
      const float* d_y = d_residual;
      if (sandwich) {
        mem("backward", "fill (zero d buffers)", N * H, [&] { sc::fill(pool, d_branch, 0.0f, N * H); });
        mem("backward", "rmsnorm_backward", 4.0 * N * H, [&] {
          sc::rmsnorm_backward(pool, d_branch, g.ffn_out_norm, d_residual, a.y, w.ffn_out_norm, a.y_rstd, N, H,
                               norm_scratch);
        });
        d_y = d_branch;
      }
      mem("backward", "fill (zero d buffers)", N * F, [&] { sc::fill(pool, d_act, 0.0f, N * F); });
      mm_bwd("matmul_backward down", d_act, g.w_down, d_y, a.act, w.w_down, N, H, F);
      mem("backward", "fill (zero d buffers)", 2.0 * N * F, [&] {
        sc::fill(pool, d_gate, 0.0f, N * F);
        sc::fill(pool, d_up, 0.0f, N * F);
      });
      mem("backward", "gated_activation_backward", 5.0 * N * F,
          [&] { sc::gated_activation_backward(pool, d_gate, d_up, d_act, a.gate, a.up, N * F, act); });
      mem("backward", "fill (zero d buffers)", N * H, [&] { sc::fill(pool, d_normed, 0.0f, N * H); });
      mm_bwd("matmul_backward gate", d_normed, g.w_gate, d_gate, a.ffn_normed, w.w_gate, N, F, H);
      mm_bwd("matmul_backward up", d_normed, g.w_up, d_up, a.ffn_normed, w.w_up, N, F, H);
      mem("backward", "rmsnorm_backward", 4.0 * N * H, [&] {
        sc::rmsnorm_backward(pool, d_residual, g.ffn_norm, d_normed, a.h_mid, w.ffn_norm, a.ffn_rstd, N, H,
                             norm_scratch);
      });
      const float* d_o = d_residual;
      if (sandwich) {
        mem("backward", "fill (zero d buffers)", N * H, [&] { sc::fill(pool, d_branch, 0.0f, N * H); });
        mem("backward", "rmsnorm_backward", 4.0 * N * H, [&] {
          sc::rmsnorm_backward(pool, d_branch, g.attn_out_norm, d_residual, a.o, w.attn_out_norm, a.o_rstd, N, H,
                               norm_scratch);
        });
        d_o = d_branch;
      }
      mem("backward", "fill (zero d buffers)", N * QD, [&] { sc::fill(pool, d_attn_out, 0.0f, N * QD); });
      mm_bwd("matmul_backward o", d_attn_out, g.wo, d_o, a.attn_out, w.wo, N, H, QD);
      mem("backward", "fill (zero d buffers)", N * (QD + 2 * KD), [&] {
        sc::fill(pool, d_q, 0.0f, N * QD);
        sc::fill(pool, d_k, 0.0f, N * KD);
        sc::fill(pool, d_v, 0.0f, N * KD);
      });
      P.time("backward", "attention_backward", fmt::format("B{} T{} Hq{} D{}", B, T, Hq, D),
             attention_gemm_flops(ashape, 5), 0, [&] {
               sc::attention_backward(pool, d_q, d_k, d_v, d_attn_out, a.q, a.k, a.v, a.attn_out, a.lse, ashape,
                                      attn_scratch);
             });
      mem("backward", "rope_backward q,k", 2.0 * N * (QD + KD), [&] {
        sc::rope_backward(pool, d_q, rope_cos, rope_sin, N, T, Hq, D);
        sc::rope_backward(pool, d_k, rope_cos, rope_sin, N, T, Hkv, D);
      });
      mem("backward", "fill (zero d buffers)", N * H, [&] { sc::fill(pool, d_normed, 0.0f, N * H); });
      mm_bwd("matmul_backward q", d_normed, g.wq, d_q, a.attn_normed, w.wq, N, QD, H);
      mm_bwd("matmul_backward k", d_normed, g.wk, d_k, a.attn_normed, w.wk, N, KD, H);
      mm_bwd("matmul_backward v", d_normed, g.wv, d_v, a.attn_normed, w.wv, N, KD, H);
      mem("backward", "rmsnorm_backward", 4.0 * N * H, [&] {
        sc::rmsnorm_backward(pool, d_residual, g.attn_norm, d_normed, a.x_in, w.attn_norm, a.attn_rstd, N, H,
                             norm_scratch);
      });
    }
    mem("backward", "embedding_backward", 2.0 * N * H, [&] {
      sc::embedding_backward(pool, G.embedding, d_residual, tokens.data(), N, H, float(c.embedding_multiplier_scale));
    });
    // -------------------------------------------------------------- optimizer
    double norm = 0;
    mem("optimizer", "grad sum_of_squares", n_params,
        [&] { norm = std::sqrt(sc::sum_of_squares(model.grads(), n_params, pool)); });
    mem("optimizer", "adamw update (clip folded in)", 7.0 * n_params,
        [&] { adamw.update(model.params(), model.grads(), 3e-4, step + 1, pool, sc::clip_coefficient(norm, 1.0)); });
    const double step_s = std::chrono::duration<double>(Clock::now() - step_t0).count();
    if (step > 0) fmt::print("  step {}: {:.3f} s, loss {:.4f}\n", step, step_s, loss_sum / double(loss_count));
  }

  // ------------------------------------------------------------------ report
  peak = std::max(peak, sc::measure_matmul_peak_gflops(pool));
  copy_gbs = std::max(copy_gbs, copy_rate());
  fmt::print("\n  sgemm peak {:.1f} GFLOP/s (2048^3); copy {:.1f} GB/s (read+write of {:.0f} MB)\n", peak, copy_gbs,
             copy_floats * 4 / 1e6);
  double total = 0;
  std::vector<std::pair<std::string, Row>> named;
  for (const auto& [key, r] : P.rows()) {
    Row x = r;
    x.seconds /= double(steps);
    x.flops /= double(steps);
    x.bytes /= double(steps);
    x.calls /= steps;
    named.emplace_back(key.substr(key.find('|') + 1), x);
    total += x.seconds;
  }
  std::sort(named.begin(), named.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  const double model_flops = double(sc::model_flops_per_token(c, seq_len)) * double(N);
  fmt::print("\nper step (mean of {}): {:.3f} s in kernels; model FLOPs {:.3f} TFLOP -> {:.1f}% of peak overall\n",
             steps, total, model_flops / 1e12, 100.0 * model_flops / total / (peak * 1e9));
  fmt::print("{:<10} {:<28} {:<22} {:>6} {:>9} {:>6} {:>9} {:>8} {:>7}\n", "phase", "kernel", "shape (per call)",
             "calls", "ms/step", "%step", "GFLOP/s", "%peak", "GB/s");
  double mm_s = 0, mm_f = 0, att_s = 0, att_f = 0, mem_s = 0;
  for (const auto& [name, r] : named) {
    const double gfs = r.flops > 0 ? r.flops / r.seconds / 1e9 : 0;
    const double gbs = r.bytes > 0 ? r.bytes / r.seconds / 1e9 : 0;
    fmt::print("{:<10} {:<28} {:<22} {:>6} {:>9.1f} {:>5.1f}% {:>9} {:>8} {:>7}\n", r.phase, name, r.shape, r.calls,
               r.seconds * 1e3, 100 * r.seconds / total, r.flops > 0 ? fmt::format("{:.1f}", gfs) : "",
               r.flops > 0 ? fmt::format("{:.1f}%", 100 * gfs / peak) : "",
               r.bytes > 0 ? fmt::format("{:.1f}", gbs) : "");
    if (name.rfind("matmul", 0) == 0) {
      mm_s += r.seconds;
      mm_f += r.flops;
    } else if (name.rfind("attention", 0) == 0) {
      att_s += r.seconds;
      att_f += r.flops;
    } else {
      mem_s += r.seconds;
    }
  }
  fmt::print("\nsummary: matmuls {:.3f} s ({:.1f}%) at {:.1f} GFLOP/s = {:.1f}% of peak; attention {:.3f} s ({:.1f}%) "
             "at {:.1f} GFLOP/s executed; memory-bound kernels {:.3f} s ({:.1f}%)\n",
             mm_s, 100 * mm_s / total, mm_f / mm_s / 1e9, 100 * mm_f / mm_s / 1e9 / peak, att_s, 100 * att_s / total,
             att_f / att_s / 1e9, mem_s, 100 * mem_s / total);
  fmt::print("(memory-bound GB/s count each float read or written once; copy reference {:.1f} GB/s)\n", copy_gbs);

  if (skip_shapes) return 0;
  // ------------------------------------------------------- per-shape matmuls
  fmt::print("\nlinear-layer shapes, GFLOP/s (best of 5): the library's pool split vs one OpenBLAS call with "
             "OpenBLAS's own {} threads\n",
             threads);
  fmt::print("{:<24} {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9}\n", "M N K (y=x W^T)", "fwd", "bwd", "bwd dx",
             "bwd dW", "blas fwd", "blas dx", "blas dW");
  struct Shape {
    size_t M, N, K;
  };
  std::vector<Shape> shapes = {{N, QD, H}, {N, F, H}, {N, H, F}, {N, V, H}};
  if (KD != QD) shapes.insert(shapes.begin() + 1, Shape{N, KD, H});
  if (QD != H) shapes.insert(shapes.begin() + 1, Shape{N, H, QD});
  for (const Shape& s : shapes) {
    std::vector<float> x(s.M * s.K, 0.01f), w(s.N * s.K, 0.02f), y(s.M * s.N, 0.0f), dx(s.M * s.K), dw(s.N * s.K);
    const int reps = s.N > 10000 ? 2 : 5;
    const double f = 2.0 * s.M * s.N * s.K;
    const double t_fwd = time_best(reps, [&] { sc::matmul_forward(pool, y.data(), x.data(), w.data(), s.M, s.N, s.K, false); });
    const double t_bwd = time_best(reps, [&] {
      sc::matmul_backward(pool, dx.data(), dw.data(), y.data(), x.data(), w.data(), s.M, s.N, s.K);
    });
    const double t_dx = time_best(reps, [&] {
      sc::matmul_backward(pool, dx.data(), nullptr, y.data(), x.data(), w.data(), s.M, s.N, s.K);
    });
    const double t_dw = time_best(reps, [&] {
      sc::matmul_backward(pool, nullptr, dw.data(), y.data(), x.data(), w.data(), s.M, s.N, s.K);
    });
    openblas_set_num_threads(int(threads));
    const int M = int(s.M), Nn = int(s.N), K = int(s.K);
    const double b_fwd = time_best(reps, [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, Nn, K, 1.0f, x.data(), K, w.data(), K, 0.0f, y.data(), Nn);
    });
    const double b_dx = time_best(reps, [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, Nn, 1.0f, y.data(), Nn, w.data(), K, 1.0f,
                  dx.data(), K);
    });
    const double b_dw = time_best(reps, [&] {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Nn, K, M, 1.0f, y.data(), Nn, x.data(), K, 1.0f, dw.data(),
                  K);
    });
    openblas_set_num_threads(1);
    fmt::print("{:<24} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} | {:>9.1f} {:>9.1f} {:>9.1f}\n", mnk(s.M, s.N, s.K),
               f / t_fwd / 1e9, 2 * f / t_bwd / 1e9, f / t_dx / 1e9, f / t_dw / 1e9, f / b_fwd / 1e9, f / b_dx / 1e9,
               f / b_dw / 1e9);
  }
  fmt::print("(peak {:.1f} GFLOP/s)\n", peak);
  return 0;
}
