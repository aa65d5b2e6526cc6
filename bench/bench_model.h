// What the decode benchmarks share: the model they time, from a checkpoint
// or as random weights of a preset (decode speed does not depend on the
// weights' values), and how they report an error. Bench-only.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/config.h"
#include "model/model.h"
#include "model/weights_io.h"
#include "run/checkpoint_store.h"
#include "run/run_paths.h"

namespace sc::bench {

struct BenchModel {
  ModelConfig config;
  std::vector<float> params;  // in parameter_layout(config)
  std::string checkpoint;     // the checkpoint directory; empty for random weights
  std::string source;         // for the report's first line
};

// `checkpoint` (a run, its checkpoints/ or one checkpoint) when given, else
// random weights of the preset or config.json `config_name`.
inline Result<BenchModel> load_bench_model(const std::string& checkpoint, const std::string& config_name,
                                           ThreadPool& pool) {
  BenchModel m;
  if (!checkpoint.empty()) {
    SC_ASSIGN_OR_RETURN(const auto found, resolve_checkpoint(checkpoint));
    m.checkpoint = found.path;
    SC_ASSIGN_OR_RETURN(m.config, ModelConfig::load(m.checkpoint + "/" + checkpoint_file::kConfig));
    const auto layout = parameter_layout(m.config);
    m.params.resize(static_cast<size_t>(parameter_buffer_floats(layout)));
    SC_RETURN_IF_ERROR(load_weights(m.checkpoint + "/" + checkpoint_file::kModel, layout, m.params.data()));
    m.source = m.checkpoint;
    return m;
  }
  SC_ASSIGN_OR_RETURN(m.config, ModelConfig::resolve(config_name));
  SC_ASSIGN_OR_RETURN(auto model, Model::create(m.config, 1, 1, pool));
  model->init_weights(1);
  m.params.assign(model->params(), model->params() + model->num_floats());
  m.source = config_name + " (random weights: decode speed does not depend on their values)";
  return m;
}

inline int fail(const Status& status) {
  std::fprintf(stderr, "error: %s\n", status.message().c_str());
  return 1;
}

}  // namespace sc::bench
