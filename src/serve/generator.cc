#include "serve/generator.h"

#include <algorithm>
#include <cmath>


namespace sc {

Result<std::unique_ptr<Generator>> Generator::load(const std::string& checkpoint_path, size_t threads,
                                                   WeightFormat weights) {
  std::unique_ptr<Generator> g(new Generator());
  SC_ASSIGN_OR_RETURN(g->model_, LoadedModel::load(checkpoint_path));
  const std::string& dir = g->model_->checkpoint();
  const ModelConfig& c = g->model_->config();
  // The flag is bounded (threads_from_flag); this catches a caller's garbage.
  const size_t max_threads = std::max(static_cast<size_t>(kMaxThreads), default_thread_count());
  if (threads == 0 || threads > max_threads) {
    return Status::invalid("generator: {} threads; 1 to {}", threads, max_threads);
  }
  g->pool_ = std::make_unique<ThreadPool>(threads);
  // The cache first: it is what a long context makes large.
  const size_t context = static_cast<size_t>(c.max_position_embeddings);
  auto cache = KvCache::create(c, 1, context);
  if (!cache.ok()) return cache.status().with_context(dir);
  g->cache_ = std::move(cache).value();
  auto inference = Inference::create(c, g->model_->params(), std::min(context, kPrefillTokensPerForward), 1, *g->pool_,
                                     weights);
  if (!inference.ok()) return inference.status().with_context(dir);
  g->inference_ = std::move(inference).value();
  g->sampler_ = std::make_unique<Sampler>(g->model_->tokenizer().vocab_size());
  return g;
}

Result<std::vector<uint32_t>> Generator::encode_prompt(const std::string& prompt) const {
  std::vector<uint32_t> context;
  // Training documents follow an end-of-document token: so does the prompt.
  context.push_back(tokenizer().end_of_document_id());
  std::vector<uint32_t> prompt_ids;
  SC_RETURN_IF_ERROR(tokenizer().encode(prompt, &prompt_ids));
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
    const uint32_t token = sampler_->sample(logits, options, static_cast<uint64_t>(n));
    if (options.stop_at_end_of_document && token == tokenizer().end_of_document_id()) break;
    generated.push_back(token);
    if (on_token && !on_token(token, tokenizer().piece_text(token))) break;
  }
  return generated;
}

}  // namespace sc
