#include "model/model.h"

#include <cmath>
#include <cstring>
#include <unordered_map>

#include "core/rng.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"

namespace sc {

Result<ModelWeights> bind_weights(const ModelConfig& config, const std::vector<TensorSpec>& layout, float* base) {
  std::unordered_map<std::string, float*> by_name;
  for (const TensorSpec& t : layout) by_name[t.name] = base + t.offset;
  auto get = [&](const std::string& name, float** out) -> Status {
    auto it = by_name.find(name);
    if (it == by_name.end()) return Status::internal("parameter layout has no tensor '{}'", name);
    *out = it->second;
    return Status();
  };
  ModelWeights w;
  SC_RETURN_IF_ERROR(get("model.embed_tokens.weight", &w.embedding));
  SC_RETURN_IF_ERROR(get("model.norm.weight", &w.final_norm));
  if (config.tie_word_embeddings) {
    w.output = w.embedding;
  } else {
    SC_RETURN_IF_ERROR(get("lm_head.weight", &w.output));
  }
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    LayerWeights lw;
    SC_RETURN_IF_ERROR(get(p + "input_layernorm.weight", &lw.attn_norm));
    SC_RETURN_IF_ERROR(get(p + "self_attn.q_proj.weight", &lw.wq));
    SC_RETURN_IF_ERROR(get(p + "self_attn.k_proj.weight", &lw.wk));
    SC_RETURN_IF_ERROR(get(p + "self_attn.v_proj.weight", &lw.wv));
    SC_RETURN_IF_ERROR(get(p + "self_attn.o_proj.weight", &lw.wo));
    if (config.sandwich_norm) {
      SC_RETURN_IF_ERROR(get(p + "post_attention_layernorm.weight", &lw.attn_out_norm));
      SC_RETURN_IF_ERROR(get(p + "pre_feedforward_layernorm.weight", &lw.ffn_norm));
      SC_RETURN_IF_ERROR(get(p + "post_feedforward_layernorm.weight", &lw.ffn_out_norm));
    } else {
      SC_RETURN_IF_ERROR(get(p + "post_attention_layernorm.weight", &lw.ffn_norm));
    }
    if (config.is_moe_layer(l)) {
      lw.is_moe = true;
      SC_RETURN_IF_ERROR(get(p + "block_sparse_moe.gate.weight", &lw.moe.router));
      for (int64_t e = 0; e < config.num_experts; ++e) {
        const std::string expert = fmt::format("{}block_sparse_moe.experts.{}.", p, e);
        float *w1, *w2, *w3;
        SC_RETURN_IF_ERROR(get(expert + "w1.weight", &w1));
        SC_RETURN_IF_ERROR(get(expert + "w2.weight", &w2));
        SC_RETURN_IF_ERROR(get(expert + "w3.weight", &w3));
        lw.moe.w1.push_back(w1);
        lw.moe.w2.push_back(w2);
        lw.moe.w3.push_back(w3);
      }
    } else {
      SC_RETURN_IF_ERROR(get(p + "mlp.gate_proj.weight", &lw.w_gate));
      SC_RETURN_IF_ERROR(get(p + "mlp.up_proj.weight", &lw.w_up));
      SC_RETURN_IF_ERROR(get(p + "mlp.down_proj.weight", &lw.w_down));
    }
    w.layers.push_back(lw);
  }
  return w;
}

ModelMatrices fp32_matrices(const ModelWeights& w) {
  ModelMatrices m;
  m.output = WeightMatrix::f32(w.output);
  for (const LayerWeights& lw : w.layers) {
    LayerMatrices& l = m.layers.emplace_back();
    l.wq = WeightMatrix::f32(lw.wq);
    l.wk = WeightMatrix::f32(lw.wk);
    l.wv = WeightMatrix::f32(lw.wv);
    l.wo = WeightMatrix::f32(lw.wo);
    if (lw.is_moe) {
      l.experts = fp32_expert_matrices(lw.moe);
    } else {
      l.w_gate = WeightMatrix::f32(lw.w_gate);
      l.w_up = WeightMatrix::f32(lw.w_up);
      l.w_down = WeightMatrix::f32(lw.w_down);
    }
  }
  return m;
}

Result<std::unique_ptr<Model>> Model::create(const ModelConfig& config, int64_t batch, int64_t seq_len,
                                             ThreadPool& pool, size_t buffer_multiple) {
  SC_RETURN_IF_ERROR(config.validate());
  if (buffer_multiple == 0) return Status::invalid("parameter buffer multiple must be positive");
  SC_RETURN_IF_ERROR(check_training_shape(config, batch, seq_len));
  std::unique_ptr<Model> model(new Model(config, batch, seq_len, pool));
  SC_RETURN_IF_ERROR(model->allocate(buffer_multiple));
  return model;
}

Status Model::allocate(size_t buffer_multiple) {
  const ModelConfig& c = config_;
  layout_ = parameter_layout(c);
  num_floats_ = static_cast<size_t>(parameter_buffer_floats(layout_));
  buffer_floats_ = (num_floats_ + buffer_multiple - 1) / buffer_multiple * buffer_multiple;
  SC_ASSIGN_OR_RETURN(weights_arena_, Arena::create(2 * buffer_floats_ * sizeof(float) + 256, "parameters+gradients"));
  SC_ASSIGN_OR_RETURN(params_, weights_arena_.allocate<float>(buffer_floats_));
  SC_ASSIGN_OR_RETURN(grads_, weights_arena_.allocate<float>(buffer_floats_));
  // Where each layer's parameters begin. Backward can report a layer's
  // gradients final only if the layers lie in the buffer in order, after
  // everything that backward writes later (the embedding).
  layer_start_.assign(static_cast<size_t>(c.num_hidden_layers), buffer_floats_);
  layer_end_.assign(layer_start_.size(), 0);
  std::vector<size_t>& layer_end = layer_end_;
  size_t outside_end = 0;  // end of the tensors before the layers (the embedding)
  for (const TensorSpec& t : layout_) {
    const size_t begin = static_cast<size_t>(t.offset), end = begin + static_cast<size_t>(t.numel());
    if (t.layer >= 0) {
      layer_start_[static_cast<size_t>(t.layer)] = std::min(layer_start_[static_cast<size_t>(t.layer)], begin);
      layer_end[static_cast<size_t>(t.layer)] = std::max(layer_end[static_cast<size_t>(t.layer)], end);
    } else if (t.role == TensorRole::kEmbedding) {
      outside_end = std::max(outside_end, end);
    }
  }
  embedding_end_ = outside_end;
  layers_in_buffer_order_ = true;
  for (size_t l = 0; l < layer_start_.size(); ++l) {
    const size_t previous_end = l == 0 ? outside_end : layer_end[l - 1];
    if (layer_start_[l] < previous_end) layers_in_buffer_order_ = false;
  }
  SC_ASSIGN_OR_RETURN(w_, bind_weights(c, layout_, params_));
  SC_ASSIGN_OR_RETURN(g_, bind_weights(c, layout_, grads_));
  matrices_ = fp32_matrices(w_);
  SC_ASSIGN_OR_RETURN(act_, gated_activation_from_name(activation_name(c.hidden_act)));
  attn_shape_ = {static_cast<size_t>(B_), static_cast<size_t>(T_), static_cast<size_t>(c.num_attention_heads),
                 static_cast<size_t>(c.num_key_value_heads), static_cast<size_t>(c.head_dim),
                 static_cast<float>(c.attn_output_multiplier), static_cast<float>(c.attn_logit_softcapping)};

  const size_t N = static_cast<size_t>(B_ * T_), H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const size_t QD = c.num_attention_heads * c.head_dim, KD = c.num_key_value_heads * c.head_dim;
  const size_t L = c.num_hidden_layers, D = c.head_dim;
  // Plan every buffer first, then allocate one arena of exactly that size.
  ActivationPlan activation_plan;
  std::vector<std::pair<float**, size_t>>& plan = activation_plan.floats;
  const size_t E = static_cast<size_t>(std::max<int64_t>(c.num_experts, 1));
  const size_t K = static_cast<size_t>(std::max<int64_t>(c.num_experts_per_tok, 1));
  moe_shape_ = {N, H, F, E, K, c.router_renormalize, c.capacity_factor, act_};
  acts_.resize(L);
  for (size_t l = 0; l < L; ++l) {
    const bool moe = c.is_moe_layer(static_cast<int64_t>(l));
    plan_layer_activations(c, N, !moe, moe, true, &acts_[l], &activation_plan);
    if (moe) ++num_moe_layers_;
  }
  moe_stats_.resize(num_moe_layers_);
  if (num_moe_layers_ > 0) {
    plan.insert(plan.end(), {{&moe_scratch_.d_y_sorted, N * K * H}, {&moe_scratch_.d_x_sorted, N * K * H},
                             {&moe_scratch_.d_act, N * K * F}, {&moe_scratch_.d_gate, N * K * F},
                             {&moe_scratch_.d_up, N * K * F}, {&moe_scratch_.d_weights, N * K},
                             {&moe_scratch_.d_logits, N * E}});
  }
  const size_t threads = pool_.num_threads();
  plan.insert(plan.end(), {{&x_final_, N * H}, {&final_normed_, N * H}, {&final_rstd_, N}, {&logits_, N * V},
                           {&row_loss_, N}, {&row_lse_, N}, {&rope_cos_, T_ * D / 2}, {&rope_sin_, T_ * D / 2},
                           {&attn_scratch_, attention_scratch_floats(T_, threads)},
                           {&norm_scratch_, rmsnorm_backward_scratch_floats(N, H)},
                           {&d_residual_, N * H}, {&d_normed_, N * H}, {&d_branch_, N * H}, {&d_q_, N * QD},
                           {&d_k_, N * KD}, {&d_v_, N * KD}, {&d_attn_out_, N * QD}, {&d_gate_, N * F},
                           {&d_up_, N * F}, {&d_act_, N * F}});
  ArenaPlan arena_plan;
  for (const auto& [ptr, n] : plan) arena_plan.add(ptr, n);
  for (const auto& [ptr, n] : activation_plan.ints) arena_plan.add(ptr, n);
  SC_ASSIGN_OR_RETURN(activations_, arena_plan.allocate("activations"));
  rope_tables_fill(rope_cos_, rope_sin_, T_, D, c.rope_theta);
  std::memset(params_, 0, buffer_floats_ * sizeof(float));
  std::memset(grads_, 0, buffer_floats_ * sizeof(float));
  return Status();
}

void Model::init_weights(uint64_t seed) {
  const double std_dev = 0.02;
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config_.num_hidden_layers));
  for (size_t t = 0; t < layout_.size(); ++t) {
    const TensorSpec& spec = layout_[t];
    float* p = params_ + spec.offset;
    const size_t n = static_cast<size_t>(spec.numel());
    if (spec.is_norm) {
      for (size_t i = 0; i < n; ++i) p[i] = 1.0f;
      continue;
    }
    const bool residual_output = spec.name.ends_with("o_proj.weight") || spec.name.ends_with("down_proj.weight") ||
                                 spec.name.ends_with(".w2.weight");  // an expert's down projection
    const double s = residual_output ? residual_std : std_dev;
    const CounterRng rng(seed, t);
    pool_.parallel_for(n, [&](size_t lo, size_t hi, size_t) {
      for (size_t i = lo; i < hi; ++i) p[i] = static_cast<float>(s * rng.normal(i));
    });
  }
}

void Model::zero_grads() { fill(pool_, grads_, 0.0f, buffer_floats_); }

Result<CrossEntropySums> Model::forward(const uint32_t* tokens, const uint32_t* targets,
                                        const ParamsNeededHook& params_needed) {
  const ModelConfig& c = config_;
  const size_t N = static_cast<size_t>(B_ * T_), V = c.vocab_size;
  tokens_ = tokens;
  targets_ = targets;
  auto need = [&](size_t end) -> Status {
    return params_needed ? params_needed(layers_in_buffer_order_ ? end : buffer_floats_) : Status();
  };

  SC_RETURN_IF_ERROR(need(embedding_end_));
  SC_RETURN_IF_ERROR(embed_forward(pool_, c, w_, acts_[0].x_in, tokens, N));
  const LayerAttention attention{.shape = attn_shape_, .rope_cos = rope_cos_, .rope_sin = rope_sin_,
                                 .scratch = attn_scratch_};
  const ModelMatrices& matrices = forward_matrices_ ? *forward_matrices_ : matrices_;
  size_t moe_index = 0;
  for (size_t l = 0; l < acts_.size(); ++l) {
    SC_RETURN_IF_ERROR(need(layer_end_[l]));
    const LayerWeights& w = w_.layers[l];
    float* x_out = (l + 1 < acts_.size()) ? acts_[l + 1].x_in : x_final_;
    layer_forward(pool_, c, w, matrices.layers[l], acts_[l], x_out, N, attention, moe_shape_, act_,
                  w.is_moe ? &moe_stats_[moe_index++] : nullptr);
  }
  SC_RETURN_IF_ERROR(need(buffer_floats_));
  head_forward(pool_, c, w_, matrices.output, logits_, final_normed_, final_rstd_, x_final_, N);
  SC_ASSIGN_OR_RETURN(CrossEntropySums sums,
                      cross_entropy_forward(pool_, logits_, targets, N, V, static_cast<float>(c.output_multiplier_scale),
                                            row_loss_, row_lse_));
  last_count_ = sums.count;
  return sums;
}

double Model::aux_loss() const {
  double sum = 0;
  for (const MoeStats& s : moe_stats_) sum += s.aux_loss;
  return moe_stats_.empty() ? 0.0 : sum / static_cast<double>(moe_stats_.size());
}

double Model::z_loss() const {
  double sum = 0;
  for (const MoeStats& s : moe_stats_) sum += s.z_loss;
  return moe_stats_.empty() ? 0.0 : sum / static_cast<double>(moe_stats_.size());
}

double Model::auxiliary_loss_term() const {
  return config_.router_aux_loss_coef * aux_loss() + config_.router_z_loss_coef * z_loss();
}

void Model::backward(float dloss, const GradsFinalHook& grads_final) {
  const ModelConfig& c = config_;
  const size_t N = static_cast<size_t>(B_ * T_), H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const size_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, D = c.head_dim;
  const size_t QD = Hq * D, KD = Hkv * D;

  // Loss and output projection; logits become their gradient in place.
  cross_entropy_backward(pool_, logits_, targets_, row_lse_, N, V, static_cast<float>(c.output_multiplier_scale), dloss);
  fill(pool_, d_normed_, 0.0f, N * H);
  matmul_backward(pool_, d_normed_, g_.output, logits_, final_normed_, w_.output, N, V, H);
  fill(pool_, d_residual_, 0.0f, N * H);
  rmsnorm_backward(pool_, d_residual_, g_.final_norm, d_normed_, x_final_, w_.final_norm, final_rstd_, N, H,
                   norm_scratch_);

  // The auxiliary losses enter with the weight this micro-batch's mean has in
  // the total: dloss = weight / count.
  const double batch_weight = static_cast<double>(dloss) * static_cast<double>(last_count_);
  const float aux_scale = num_moe_layers_ ? static_cast<float>(batch_weight * c.router_aux_loss_coef / num_moe_layers_) : 0.0f;
  const float z_scale = num_moe_layers_ ? static_cast<float>(batch_weight * c.router_z_loss_coef / num_moe_layers_) : 0.0f;
  size_t moe_index = num_moe_layers_;
  // d_residual_ holds dL/d(residual stream) at the output of the layer being undone.
  for (size_t l = acts_.size(); l-- > 0;) {
    const LayerActivations& a = acts_[l];
    const LayerWeights& w = w_.layers[l];
    LayerWeights& g = g_.layers[l];
    // Feed-forward block: x_out = h_mid + [norm](act · Wdownᵀ).
    const float* d_y = d_residual_;
    if (c.sandwich_norm) {
      fill(pool_, d_branch_, 0.0f, N * H);
      rmsnorm_backward(pool_, d_branch_, g.ffn_out_norm, d_residual_, a.y, w.ffn_out_norm, a.y_rstd, N, H,
                       norm_scratch_);
      d_y = d_branch_;
    }
    fill(pool_, d_normed_, 0.0f, N * H);
    if (w.is_moe) {
      --moe_index;
      moe_backward(pool_, moe_shape_, w.moe, g.moe, a.ffn_normed, d_y, d_normed_, a.moe, moe_stats_[moe_index],
                   moe_scratch_, aux_scale, z_scale);
    } else {
      fill(pool_, d_act_, 0.0f, N * F);
      matmul_backward(pool_, d_act_, g.w_down, d_y, a.act, w.w_down, N, H, F);
      fill(pool_, d_gate_, 0.0f, N * F);
      fill(pool_, d_up_, 0.0f, N * F);
      gated_activation_backward(pool_, d_gate_, d_up_, d_act_, a.gate, a.up, N * F, act_);
      matmul_backward(pool_, d_normed_, g.w_gate, d_gate_, a.ffn_normed, w.w_gate, N, F, H);
      matmul_backward(pool_, d_normed_, g.w_up, d_up_, a.ffn_normed, w.w_up, N, F, H);
    }
    rmsnorm_backward(pool_, d_residual_, g.ffn_norm, d_normed_, a.h_mid, w.ffn_norm, a.ffn_rstd, N, H, norm_scratch_);

    // Attention block: h_mid = x_in + [norm](attn_out · Woᵀ).
    const float* d_o = d_residual_;
    if (c.sandwich_norm) {
      fill(pool_, d_branch_, 0.0f, N * H);
      rmsnorm_backward(pool_, d_branch_, g.attn_out_norm, d_residual_, a.o, w.attn_out_norm, a.o_rstd, N, H,
                       norm_scratch_);
      d_o = d_branch_;
    }
    fill(pool_, d_attn_out_, 0.0f, N * QD);
    matmul_backward(pool_, d_attn_out_, g.wo, d_o, a.attn_out, w.wo, N, H, QD);
    fill(pool_, d_q_, 0.0f, N * QD);
    fill(pool_, d_k_, 0.0f, N * KD);
    fill(pool_, d_v_, 0.0f, N * KD);
    attention_backward(pool_, d_q_, d_k_, d_v_, d_attn_out_, a.q, a.k, a.v, a.attn_out, a.lse, attn_shape_,
                       attn_scratch_);
    rope_backward(pool_, d_q_, rope_cos_, rope_sin_, N, T_, Hq, D);
    rope_backward(pool_, d_k_, rope_cos_, rope_sin_, N, T_, Hkv, D);
    fill(pool_, d_normed_, 0.0f, N * H);
    matmul_backward(pool_, d_normed_, g.wq, d_q_, a.attn_normed, w.wq, N, QD, H);
    matmul_backward(pool_, d_normed_, g.wk, d_k_, a.attn_normed, w.wk, N, KD, H);
    matmul_backward(pool_, d_normed_, g.wv, d_v_, a.attn_normed, w.wv, N, KD, H);
    rmsnorm_backward(pool_, d_residual_, g.attn_norm, d_normed_, a.x_in, w.attn_norm, a.attn_rstd, N, H,
                     norm_scratch_);
    if (grads_final && layers_in_buffer_order_) grads_final(layer_start_[l]);
  }
  embedding_backward(pool_, g_.embedding, d_residual_, tokens_, N, H, static_cast<float>(c.embedding_multiplier_scale));
  if (grads_final) grads_final(0);
}

}  // namespace sc
