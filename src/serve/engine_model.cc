#include "serve/engine_model.h"

#include <string>
#include <vector>

#include "run/run_paths.h"

namespace sc {

Result<std::unique_ptr<EngineModel>> make_engine_model(std::shared_ptr<const LoadedModel> model,
                                                       const InferenceShape& shape) {
  auto inference = Inference::create(model->config(), model->params(), shape.max_tokens, shape.max_sequences,
                                     *shape.pool, shape.weights);
  if (!inference.ok()) return inference.status().with_context(model->checkpoint());
  const Tokenizer& tokenizer = model->tokenizer();
  auto built = std::make_unique<EngineModel>();
  built->inference = std::move(inference).value();
  built->vocabulary = {.size = tokenizer.vocab_size(),
                       .end_of_document = tokenizer.end_of_document_id(),
                       .piece_text = [&tokenizer](uint32_t id) { return tokenizer.piece_text(id); }};
  built->owner = std::move(model);
  return built;
}

Status check_can_replace(const LoadedModel& served, const LoadedModel& next) {
  const std::vector<std::string> differences = model_differences(served.config(), next.config());
  if (!differences.empty()) {
    return Status::invalid("its {} differs from the served model's in {}: a model of another shape needs another "
                           "server (restart it on this checkpoint)",
                           checkpoint_file::kConfig, fmt::join(differences, ", "));
  }
  const Tokenizer& a = served.tokenizer();
  const Tokenizer& b = next.tokenizer();
  if (a.vocab_size() != b.vocab_size() || a.end_of_document_id() != b.end_of_document_id()) {
    return Status::invalid("its {} has {} tokens (end of document {}); the served one's {} ({})",
                           checkpoint_file::kTokenizer, b.vocab_size(), b.end_of_document_id(), a.vocab_size(),
                           a.end_of_document_id());
  }
  for (uint32_t id = 0; id < a.vocab_size(); ++id) {
    if (a.piece_text(id) != b.piece_text(id)) {
      return Status::invalid("its {} gives token {} another text than the served one's: prompts encoded for one "
                             "model would be misread by the other",
                             checkpoint_file::kTokenizer, id);
    }
  }
  return Status();
}

}  // namespace sc
