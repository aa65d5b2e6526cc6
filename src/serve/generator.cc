#include "serve/generator.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/log.h"
#include "core/rng.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "model/counts.h"
#include "model/weights_io.h"
#include "run/checkpoint_store.h"
#include "run/run_paths.h"

namespace sc {
namespace fs = std::filesystem;

Result<std::unique_ptr<Generator>> Generator::load(const std::string& checkpoint_path, size_t threads) {
  std::unique_ptr<Generator> g(new Generator());
  SC_ASSIGN_OR_RETURN(const CheckpointInfo checkpoint, resolve_checkpoint(checkpoint_path));
  g->checkpoint_ = checkpoint.path;
  const std::string dir = g->checkpoint_;
  SC_ASSIGN_OR_RETURN(g->config_, ModelConfig::load(dir + "/" + checkpoint_file::kConfig));
  SC_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::load(dir + "/" + checkpoint_file::kTokenizer));
  g->tokenizer_ = std::make_unique<Tokenizer>(std::move(tokenizer));
  const ModelConfig& c = g->config_;
  if (g->tokenizer_->vocab_size() > static_cast<uint32_t>(c.vocab_size)) {
    return Status::invalid("{}: tokenizer has {} tokens, more than the model's vocab_size {}", dir,
                           g->tokenizer_->vocab_size(), c.vocab_size);
  }
  g->pool_ = std::make_unique<ThreadPool>(threads);
  blas_init_single_threaded();
  g->layout_ = parameter_layout(c);
  SC_ASSIGN_OR_RETURN(g->act_, gated_activation_from_name(activation_name(c.hidden_act)));
  g->context_ = c.max_position_embeddings;
  const size_t floats = static_cast<size_t>(parameter_buffer_floats(g->layout_));
  const size_t H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  const size_t QD = c.num_attention_heads * D, KD = c.num_key_value_heads * D, L = c.num_hidden_layers;
  const size_t T = static_cast<size_t>(g->context_);
  std::vector<std::pair<float**, size_t>> plan = {
      {&g->params_, floats}, {&g->k_cache_, L * T * KD}, {&g->v_cache_, L * T * KD}, {&g->rope_cos_, T * D / 2},
      {&g->rope_sin_, T * D / 2}, {&g->x_, H}, {&g->normed_, H}, {&g->rstd_, 1}, {&g->q_, QD}, {&g->k_, KD},
      {&g->v_, KD}, {&g->att_, QD}, {&g->o_, H}, {&g->scores_, T}, {&g->gate_, F}, {&g->up_, F},
      {&g->act_buf_, F}, {&g->logits_, V}};
  std::vector<std::pair<int32_t**, size_t>> int_plan;
  if (c.is_moe()) {
    const size_t E = c.num_experts, K = c.num_experts_per_tok;
    g->moe_shape_ = {1, H, F, E, K, c.router_renormalize, 0.0, g->act_};
    MoeActivations& m = g->moe_acts_;
    plan.insert(plan.end(), {{&m.router_logits, E}, {&m.probs, E}, {&m.logsumexp, 1}, {&m.weights, K},
                             {&m.x_sorted, K * H}, {&m.gate, K * F}, {&m.up, K * F}, {&m.act, K * F},
                             {&m.y_sorted, K * H}});
    int_plan = {{&m.experts, K}, {&m.rows, K}, {&m.row_tokens, K}, {&m.offsets, E + 1}};
  }
  ArenaPlan arena_plan;
  for (const auto& [ptr, n] : plan) arena_plan.add(ptr, n);
  for (const auto& [ptr, n] : int_plan) arena_plan.add(ptr, n);
  SC_ASSIGN_OR_RETURN(g->arena_, arena_plan.allocate("generator"));
  SC_RETURN_IF_ERROR(load_weights(dir + "/" + checkpoint_file::kModel, g->layout_, g->params_));
  SC_ASSIGN_OR_RETURN(g->w_, bind_weights(c, g->layout_, g->params_));
  rope_tables_fill(g->rope_cos_, g->rope_sin_, T, D, c.rope_theta);
  return g;
}

const float* Generator::decode_step(uint32_t token, int64_t position) {
  const ModelConfig& c = config_;
  ThreadPool& pool = *pool_;
  const size_t H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  const size_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, QD = Hq * D, KD = Hkv * D;
  const size_t T = static_cast<size_t>(context_), p = static_cast<size_t>(position);
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float* cos_p = rope_cos_ + p * D / 2;
  const float* sin_p = rope_sin_ + p * D / 2;
  (void)embedding_forward(pool, x_, &token, w_.embedding, 1, V, H, static_cast<float>(c.embedding_multiplier_scale));
  for (size_t l = 0; l < w_.layers.size(); ++l) {
    const LayerWeights& w = w_.layers[l];
    float* k_cache = k_cache_ + l * T * KD;
    float* v_cache = v_cache_ + l * T * KD;
    rmsnorm_forward(pool, normed_, rstd_, x_, w.attn_norm, 1, H, eps);
    matmul_forward(pool, q_, normed_, w.wq, 1, QD, H, false);
    matmul_forward(pool, k_cache + p * KD, normed_, w.wk, 1, KD, H, false);
    matmul_forward(pool, v_cache + p * KD, normed_, w.wv, 1, KD, H, false);
    rope_forward(pool, q_, cos_p, sin_p, 1, 1, Hq, D);
    rope_forward(pool, k_cache + p * KD, cos_p, sin_p, 1, 1, Hkv, D);
    // Attention of this one query over the cached keys 0..p.
    const float multiplier = static_cast<float>(c.attn_output_multiplier);
    const float cap = static_cast<float>(c.attn_logit_softcapping);
    const size_t group = Hq / Hkv;
    for (size_t h = 0; h < Hq; ++h) {
      const float* q = q_ + h * D;
      const size_t kv = h / group;
      float max_score = -INFINITY;
      for (size_t j = 0; j <= p; ++j) {
        const float* k = k_cache + j * KD + kv * D;
        float s = 0;
        for (size_t d = 0; d < D; ++d) s += q[d] * k[d];
        s *= multiplier;
        if (cap > 0) s = cap * std::tanh(s / cap);
        scores_[j] = s;
        max_score = std::max(max_score, s);
      }
      float total = 0;
      for (size_t j = 0; j <= p; ++j) total += (scores_[j] = std::exp(scores_[j] - max_score));
      float* out = att_ + h * D;
      std::fill(out, out + D, 0.0f);
      for (size_t j = 0; j <= p; ++j) {
        const float weight = scores_[j] / total;
        const float* v = v_cache + j * KD + kv * D;
        for (size_t d = 0; d < D; ++d) out[d] += weight * v[d];
      }
    }
    matmul_forward(pool, o_, att_, w.wo, 1, H, QD, false);
    if (c.sandwich_norm) rmsnorm_forward(pool, o_, rstd_, o_, w.attn_out_norm, 1, H, eps);
    add_inplace(pool, x_, o_, H);
    rmsnorm_forward(pool, normed_, rstd_, x_, w.ffn_norm, 1, H, eps);
    if (w.is_moe) {
      // Inference never drops: capacity limits are a training-time device.
      moe_forward(pool, moe_shape_, w.moe, normed_, o_, moe_acts_, &moe_stats_);
    } else {
      matmul_forward(pool, gate_, normed_, w.w_gate, 1, F, H, false);
      matmul_forward(pool, up_, normed_, w.w_up, 1, F, H, false);
      gated_activation_forward(pool, act_buf_, gate_, up_, F, act_);
      matmul_forward(pool, o_, act_buf_, w.w_down, 1, H, F, false);
    }
    if (c.sandwich_norm) rmsnorm_forward(pool, o_, rstd_, o_, w.ffn_out_norm, 1, H, eps);
    add_inplace(pool, x_, o_, H);
  }
  rmsnorm_forward(pool, normed_, rstd_, x_, w_.final_norm, 1, H, eps);
  matmul_forward(pool, logits_, normed_, w_.output, 1, V, H, false);
  scale_inplace(pool, logits_, static_cast<float>(c.output_multiplier_scale), V);
  return logits_;
}

uint32_t Generator::sample(const SamplingOptions& options, uint64_t draw) {
  // Only ids the tokenizer knows can be sampled (the model's vocab may be padded).
  const size_t V = tokenizer_->vocab_size();
  if (options.temperature <= 0) return static_cast<uint32_t>(std::max_element(logits_, logits_ + V) - logits_);
  candidates_.resize(V);
  for (size_t i = 0; i < V; ++i) candidates_[i] = {logits_[i] / static_cast<float>(options.temperature), static_cast<uint32_t>(i)};
  size_t keep = V;
  if (options.top_k > 0) keep = std::min<size_t>(keep, static_cast<size_t>(options.top_k));
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<long>(keep), candidates_.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  const float max_logit = candidates_[0].first;
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += (candidates_[i].first = std::exp(candidates_[i].first - max_logit));
  if (options.top_p < 1.0) {
    double cumulative = 0;
    for (size_t i = 0; i < keep; ++i) {
      cumulative += candidates_[i].first / total;
      if (cumulative >= options.top_p) {
        keep = i + 1;
        break;
      }
    }
    total = 0;
    for (size_t i = 0; i < keep; ++i) total += candidates_[i].first;
  }
  double u = CounterRng(options.seed, 0x5A4D).uniform(draw) * total;
  for (size_t i = 0; i < keep; ++i) {
    u -= candidates_[i].first;
    if (u <= 0) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

Result<std::vector<uint32_t>> Generator::generate(const std::string& prompt, const SamplingOptions& options,
                                                  const TokenFn& on_token) {
  if (options.max_tokens < 0) return Status::invalid("--max-tokens must not be negative");
  if (options.top_p <= 0 || options.top_p > 1) return Status::invalid("--top-p {} must be in (0, 1]", options.top_p);
  if (options.temperature < 0) return Status::invalid("--temperature {} must not be negative", options.temperature);
  std::vector<uint32_t> context;
  // Training documents follow an end-of-document token: so does the prompt.
  context.push_back(tokenizer_->end_of_document_id());
  std::vector<uint32_t> prompt_ids;
  SC_RETURN_IF_ERROR(tokenizer_->encode(prompt, &prompt_ids));
  context.insert(context.end(), prompt_ids.begin(), prompt_ids.end());
  if (static_cast<int64_t>(context.size()) >= context_) {
    return Status::invalid("the prompt is {} tokens; the model's context is {} (max_position_embeddings)",
                           prompt_ids.size(), context_);
  }
  for (size_t i = 0; i + 1 < context.size(); ++i) decode_step(context[i], static_cast<int64_t>(i));
  std::vector<uint32_t> generated;
  int64_t position = static_cast<int64_t>(context.size()) - 1;
  uint32_t token = context.back();
  for (int64_t n = 0; n < options.max_tokens && position < context_; ++n, ++position) {
    decode_step(token, position);
    token = sample(options, static_cast<uint64_t>(n));
    if (options.stop_at_end_of_document && token == tokenizer_->end_of_document_id()) break;
    generated.push_back(token);
    if (on_token && !on_token(token, tokenizer_->piece_text(token))) break;
  }
  return generated;
}

}  // namespace sc
