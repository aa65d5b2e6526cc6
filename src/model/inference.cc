#include "model/inference.h"

#include <algorithm>

#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "kernels/rope.h"
#include "model/counts.h"

namespace sc {

Result<KvCache> KvCache::create(const ModelConfig& config, size_t slots, size_t context) {
  if (slots == 0 || context == 0) return Status::invalid("a KV cache needs at least one slot and one position");
  if (context > static_cast<size_t>(config.max_position_embeddings)) {
    return Status::invalid("KV cache context {} exceeds the model's max_position_embeddings {}", context,
                           config.max_position_embeddings);
  }
  SC_RETURN_IF_ERROR(config.validate());
  KvCache cache;
  cache.layers_ = static_cast<size_t>(config.num_hidden_layers);
  cache.slots_ = slots;
  cache.context_ = context;
  cache.row_floats_ = static_cast<size_t>(config.num_key_value_heads * config.head_dim);
  // The config's bounds keep layers x context x row within 2^56 floats; the
  // slots are the caller's.
  size_t floats = 0;
  const std::string name = fmt::format("KV cache of {} slot{} x {} positions", slots, slots > 1 ? "s" : "", context);
  if (__builtin_mul_overflow(cache.layers_ * context * cache.row_floats_, slots, &floats)) {
    return Status::invalid("{}: needs more than 2^64 bytes of memory", name);
  }
  ArenaPlan plan;
  plan.add(&cache.keys_, floats);
  plan.add(&cache.values_, floats);
  SC_ASSIGN_OR_RETURN(cache.arena_, plan.allocate(name));
  return cache;
}

Result<std::unique_ptr<Inference>> Inference::create(const ModelConfig& config, const float* params,
                                                     size_t max_tokens, size_t max_sequences, ThreadPool& pool,
                                                     WeightFormat weights) {
  SC_RETURN_IF_ERROR(config.validate());
  if (max_tokens == 0 || max_sequences == 0) return Status::invalid("inference needs room for at least one token");
  // With these, every buffer below is within 64 bits (the config bounds the rest).
  if (max_tokens > static_cast<size_t>(kMaxTokensPerMicroBatch) ||
      max_sequences > static_cast<size_t>(kMaxTokensPerMicroBatch)) {
    return Status::invalid("inference for {} tokens of {} sequences at once; at most {} of each", max_tokens,
                           max_sequences, kMaxTokensPerMicroBatch);
  }
  std::unique_ptr<Inference> m(new Inference(config, max_tokens, max_sequences, pool));
  const ModelConfig& c = m->config_;
  // ModelWeights' views are mutable for the gradient binding; inference only reads them.
  SC_ASSIGN_OR_RETURN(m->w_, bind_weights(c, parameter_layout(c), const_cast<float*>(params)));
  SC_ASSIGN_OR_RETURN(m->packed_, PackedWeights::create(c, m->w_, weights, pool));
  SC_ASSIGN_OR_RETURN(m->act_, gated_activation_from_name(activation_name(c.hidden_act)));
  m->attention_shape_ = {0, 0, static_cast<size_t>(c.num_attention_heads), static_cast<size_t>(c.num_key_value_heads),
                    static_cast<size_t>(c.head_dim), static_cast<float>(c.attn_output_multiplier),
                    static_cast<float>(c.attn_logit_softcapping)};
  const size_t H = c.hidden_size, V = c.vocab_size, D = c.head_dim;
  const size_t context = static_cast<size_t>(c.max_position_embeddings);
  ActivationPlan plan;
  bool any_dense = false;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) any_dense |= !c.is_moe_layer(l);
  plan_layer_activations(c, max_tokens, any_dense, c.is_moe(), false, &m->a_, &plan);
  plan.floats.insert(plan.floats.end(),
                     {{&m->last_x_, max_sequences * H}, {&m->final_normed_, max_sequences * H},
                      {&m->final_rstd_, max_sequences}, {&m->logits_, max_sequences * V},
                      {&m->rope_cos_, context * D / 2}, {&m->rope_sin_, context * D / 2},
                      {&m->attn_scratch_, attention_scratch_floats(context, pool.num_threads())}});
  ArenaPlan arena_plan;
  for (const auto& [ptr, n] : plan.floats) arena_plan.add(ptr, n);
  for (const auto& [ptr, n] : plan.ints) arena_plan.add(ptr, n);
  arena_plan.add(&m->tokens_, max_tokens);
  arena_plan.add(&m->positions_, max_tokens);
  arena_plan.add(&m->segments_, max_tokens);
  arena_plan.add(&m->last_rows_, max_sequences);
  SC_ASSIGN_OR_RETURN(m->arena_, arena_plan.allocate(fmt::format("inference buffers for {} tokens of a {}-position "
                                                                  "context", max_tokens, context)));
  rope_tables_fill(m->rope_cos_, m->rope_sin_, context, D, c.rope_theta);
  m->one_token_.reserve(max_sequences);
  return m;
}

Status Inference::check(const KvCache& cache, std::span<const Sequence> sequences) const {
  const ModelConfig& c = config_;
  if (cache.layers() != static_cast<size_t>(c.num_hidden_layers) ||
      cache.row_floats() != static_cast<size_t>(c.num_key_value_heads * c.head_dim) ||
      cache.context() > static_cast<size_t>(c.max_position_embeddings)) {
    return Status::invalid("the KV cache was made for another model");
  }
  if (sequences.size() > max_sequences_) {
    return Status::invalid("{} sequences in one call; room for {}", sequences.size(), max_sequences_);
  }
  for (size_t i = 0; i < sequences.size(); ++i) {
    const Sequence& s = sequences[i];
    if (s.tokens.empty()) return Status::invalid("sequence {} has no tokens", i);
    if (s.slot >= cache.slots()) return Status::invalid("sequence {}: slot {} of {}", i, s.slot, cache.slots());
    if (s.position > cache.context() || s.tokens.size() > cache.context() - s.position) {  // no wrap-around
      return Status::invalid("sequence {}: {} tokens from position {} exceed the KV cache's context {}", i,
                             s.tokens.size(), s.position, cache.context());
    }
    for (uint32_t token : s.tokens) {
      if (token >= static_cast<uint64_t>(c.vocab_size)) {
        return Status::invalid("sequence {}: token id {} >= vocab_size {}", i, token, c.vocab_size);
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (sequences[j].slot == s.slot) return Status::invalid("sequences {} and {} share slot {}", j, i, s.slot);
    }
  }
  return Status();
}

Result<const float*> Inference::prefill(KvCache& cache, std::span<const Sequence> sequences) {
  return run(cache, sequences, max_tokens_);
}

Result<const float*> Inference::run(KvCache& cache, std::span<const Sequence> sequences, size_t rows_per_forward) {
  SC_RETURN_IF_ERROR(check(cache, sequences));
  const size_t V = config_.vocab_size;
  // Pack the tokens, sequence after sequence, into forwards of up to
  // rows_per_forward rows; a sequence that does not fit continues in the next one.
  rows_ = num_segments_ = num_last_ = 0;
  size_t first_logits = 0;  // sequence of the next forward's first logits row
  auto run_forward = [&]() -> Status {
    SC_RETURN_IF_ERROR(forward(cache, logits_ + first_logits * V));
    first_logits += num_last_;
    rows_ = num_segments_ = num_last_ = 0;
    return Status();
  };
  for (const Sequence& s : sequences) {
    for (size_t done = 0; done < s.tokens.size();) {
      if (rows_ == rows_per_forward) SC_RETURN_IF_ERROR(run_forward());
      const size_t take = std::min(s.tokens.size() - done, rows_per_forward - rows_);
      segments_[num_segments_++] = {rows_, take, s.slot, s.position + done};
      for (size_t i = 0; i < take; ++i) {
        tokens_[rows_ + i] = s.tokens[done + i];
        positions_[rows_ + i] = s.position + done + i;
      }
      rows_ += take;
      done += take;
      if (done == s.tokens.size()) last_rows_[num_last_++] = rows_ - 1;
    }
  }
  if (rows_ > 0) SC_RETURN_IF_ERROR(run_forward());
  return static_cast<const float*>(logits_);
}

Result<const float*> Inference::decode(KvCache& cache, std::span<const uint32_t> tokens,
                                       std::span<const size_t> slots, std::span<const size_t> positions) {
  if (slots.size() != tokens.size() || positions.size() != tokens.size()) {
    return Status::invalid("decode: {} tokens, {} slots, {} positions", tokens.size(), slots.size(),
                           positions.size());
  }
  if (tokens.size() > std::min(max_tokens_, max_sequences_)) {
    return Status::invalid("decode of {} sequences; room for {}", tokens.size(), std::min(max_tokens_, max_sequences_));
  }
  one_token_.clear();  // capacity max_sequences: no allocation
  for (size_t i = 0; i < tokens.size(); ++i) one_token_.push_back({tokens.subspan(i, 1), slots[i], positions[i]});
  return run(cache, one_token_, std::min(max_tokens_, kRowwiseMaxRows));
}

Status Inference::forward(KvCache& cache, float* logits) {
  const ModelConfig& c = config_;
  const size_t N = rows_, H = c.hidden_size, V = c.vocab_size;
  SC_RETURN_IF_ERROR(embed_forward(pool_, c, w_, a_.x_in, tokens_, N));
  AttentionShape shape = attention_shape_;
  shape.B = cache.slots();
  shape.T = cache.context();
  LayerAttention attention{.shape = shape, .rope_cos = rope_cos_, .rope_sin = rope_sin_, .scratch = attn_scratch_,
                           .positions = positions_, .segments = segments_, .num_segments = num_segments_};
  const MoeShape moe_shape{N,
                           H,
                           static_cast<size_t>(c.intermediate_size),
                           static_cast<size_t>(std::max<int64_t>(c.num_experts, 1)),
                           static_cast<size_t>(std::max<int64_t>(c.num_experts_per_tok, 1)),
                           c.router_renormalize,
                           0.0,  // dropless: capacity is a training device
                           act_};
  for (size_t l = 0; l < w_.layers.size(); ++l) {
    attention.k_cache = cache.keys(l);
    attention.v_cache = cache.values(l);
    layer_forward(pool_, c, w_.layers[l], packed_.matrices().layers[l], a_, a_.x_in, N, attention, moe_shape, act_,
                  &moe_stats_);
  }
  for (size_t i = 0; i < num_last_; ++i) std::copy_n(a_.x_in + last_rows_[i] * H, H, last_x_ + i * H);
  head_forward(pool_, c, w_, packed_.matrices().output, logits, final_normed_, final_rstd_, last_x_, num_last_);
  scale_inplace(pool_, logits, static_cast<float>(c.output_multiplier_scale), num_last_ * V);
  return Status();
}

}  // namespace sc
