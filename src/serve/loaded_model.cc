#include "serve/loaded_model.h"

#include <vector>

#include "model/counts.h"
#include "model/weights_io.h"
#include "run/checkpoint_store.h"
#include "run/run_paths.h"

namespace sc {

Result<std::unique_ptr<LoadedModel>> LoadedModel::load(const std::string& checkpoint_path) {
  std::unique_ptr<LoadedModel> m(new LoadedModel());
  SC_ASSIGN_OR_RETURN(const CheckpointInfo checkpoint, resolve_checkpoint(checkpoint_path));
  m->checkpoint_ = checkpoint.path;
  m->step_ = checkpoint.step;
  const std::string dir = m->checkpoint_;
  SC_ASSIGN_OR_RETURN(m->config_, ModelConfig::load(dir + "/" + checkpoint_file::kConfig));
  SC_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::load(dir + "/" + checkpoint_file::kTokenizer));
  m->tokenizer_ = std::make_unique<Tokenizer>(std::move(tokenizer));
  const ModelConfig& c = m->config_;
  if (m->tokenizer_->vocab_size() > static_cast<uint32_t>(c.vocab_size)) {
    return Status::invalid("{}: tokenizer has {} tokens, more than the model's vocab_size {}", dir,
                           m->tokenizer_->vocab_size(), c.vocab_size);
  }
  const std::vector<TensorSpec> layout = parameter_layout(c);
  ArenaPlan weights;
  weights.add(&m->params_, static_cast<size_t>(parameter_buffer_floats(layout)));
  auto weights_arena = weights.allocate("the model's weights");
  if (!weights_arena.ok()) return weights_arena.status().with_context(dir);
  m->weights_ = std::move(weights_arena).value();
  SC_RETURN_IF_ERROR(load_weights(dir + "/" + checkpoint_file::kModel, layout, m->params_));
  return m;
}

}  // namespace sc
