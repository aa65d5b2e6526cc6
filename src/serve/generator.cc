#include "serve/generator.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "model/counts.h"
#include "model/weights_io.h"
#include "run/checkpoint_store.h"
#include "run/run_paths.h"

namespace sc {

// Prompt tokens per prefill forward: a longer prompt takes several.
constexpr size_t kPrefillTokens = 256;

constexpr double kMinTemperature = 1e-3, kMaxTemperature = 100;

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
  // The flag is bounded (threads_from_flag); this catches a caller's garbage.
  const size_t max_threads = std::max(static_cast<size_t>(kMaxThreads), default_thread_count());
  if (threads == 0 || threads > max_threads) {
    return Status::invalid("generator: {} threads; 1 to {}", threads, max_threads);
  }
  g->pool_ = std::make_unique<ThreadPool>(threads);
  const std::vector<TensorSpec> layout = parameter_layout(c);
  ArenaPlan weights;
  weights.add(&g->params_, static_cast<size_t>(parameter_buffer_floats(layout)));
  auto weights_arena = weights.allocate("the model's weights");
  if (!weights_arena.ok()) return weights_arena.status().with_context(dir);
  g->weights_ = std::move(weights_arena).value();
  SC_RETURN_IF_ERROR(load_weights(dir + "/" + checkpoint_file::kModel, layout, g->params_));
  // The cache first: it is what a long context makes large.
  const size_t context = static_cast<size_t>(c.max_position_embeddings);
  auto cache = KvCache::create(c, 1, context);
  if (!cache.ok()) return cache.status().with_context(dir);
  g->cache_ = std::move(cache).value();
  auto inference = Inference::create(c, g->params_, std::min(context, kPrefillTokens), 1, *g->pool_);
  if (!inference.ok()) return inference.status().with_context(dir);
  g->inference_ = std::move(inference).value();
  return g;
}

uint32_t Generator::sample(const float* logits, const SamplingOptions& options, uint64_t draw) {
  // Only ids the tokenizer knows can be sampled (the model's vocab may be padded).
  const size_t V = tokenizer_->vocab_size();
  if (options.temperature <= 0) return static_cast<uint32_t>(std::max_element(logits, logits + V) - logits);
  candidates_.resize(V);
  for (size_t i = 0; i < V; ++i) candidates_[i] = {logits[i] / static_cast<float>(options.temperature), static_cast<uint32_t>(i)};
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

Status SamplingOptions::validate() const {
  if (max_tokens < 0 || max_tokens > kMaxPositionEmbeddings) {
    return Status::invalid("--max-tokens must be an integer in [0, {}] (got {})", kMaxPositionEmbeddings, max_tokens);
  }
  // A temperature near 0 would divide the logits into infinities.
  if (!(temperature == 0 || (temperature >= kMinTemperature && temperature <= kMaxTemperature))) {
    return Status::invalid("--temperature must be 0 (greedy) or a number in [{}, {}] (got {})", kMinTemperature,
                           kMaxTemperature, temperature);
  }
  if (!(top_p > 0 && top_p <= 1)) return Status::invalid("--top-p must be a number in (0, 1] (got {})", top_p);
  if (top_k < 0 || top_k > kMaxVocabSize) {
    return Status::invalid("--top-k must be an integer in [0, {}] (0: off) (got {})", kMaxVocabSize, top_k);
  }
  return Status();
}

Result<std::vector<uint32_t>> Generator::encode_prompt(const std::string& prompt) const {
  std::vector<uint32_t> context;
  // Training documents follow an end-of-document token: so does the prompt.
  context.push_back(tokenizer_->end_of_document_id());
  std::vector<uint32_t> prompt_ids;
  SC_RETURN_IF_ERROR(tokenizer_->encode(prompt, &prompt_ids));
  context.insert(context.end(), prompt_ids.begin(), prompt_ids.end());
  if (context.size() >= cache_.context()) {
    return Status::invalid("the prompt is {} tokens; the model's context is {} (max_position_embeddings)",
                           prompt_ids.size(), cache_.context());
  }
  return context;
}

Result<std::vector<uint32_t>> Generator::generate(const std::string& prompt, const SamplingOptions& options,
                                                  const TokenFn& on_token) {
  SC_RETURN_IF_ERROR(options.validate());
  SC_ASSIGN_OR_RETURN(const std::vector<uint32_t> context, encode_prompt(prompt));
  return generate_from(context, options, on_token);
}

Result<std::vector<uint32_t>> Generator::generate_from(const std::vector<uint32_t>& context,
                                                       const SamplingOptions& options, const TokenFn& on_token) {
  SC_RETURN_IF_ERROR(options.validate());
  const size_t max_context = cache_.context();
  if (context.empty() || context.size() >= max_context) {
    return Status::invalid("{} context tokens; the model's context is {} (max_position_embeddings)", context.size(),
                           max_context);
  }
  // The whole prompt in one prefill (slot 0 from position 0), then one decode
  // per sampled token at the next position.
  const Inference::Sequence prompt_sequence{.tokens = context, .slot = 0, .position = 0};
  SC_ASSIGN_OR_RETURN(const float* logits, inference_->prefill(cache_, {&prompt_sequence, 1}));
  std::vector<uint32_t> generated;
  size_t position = context.size() - 1;  // of the last token fed
  for (int64_t n = 0; n < options.max_tokens && position < max_context; ++n, ++position) {
    if (n > 0) {
      const uint32_t last = generated.back();
      const size_t slot = 0;
      SC_ASSIGN_OR_RETURN(logits, inference_->decode(cache_, {&last, 1}, {&slot, 1}, {&position, 1}));
    }
    const uint32_t token = sample(logits, options, static_cast<uint64_t>(n));
    if (options.stop_at_end_of_document && token == tokenizer_->end_of_document_id()) break;
    generated.push_back(token);
    if (on_token && !on_token(token, tokenizer_->piece_text(token))) break;
  }
  return generated;
}

}  // namespace sc
