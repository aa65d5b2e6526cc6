// `supercluster train`: the training loop of one rank (docs/checkpoint_format.md,
// docs/fault_tolerance.md; data parallelism in train/data_parallel.h). Reads
// shards, trains, evaluates, checkpoints, resumes bit-for-bit.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace sc {

struct TrainRequest {
  nlohmann::json overrides;  // flags given on the command line, as TrainOptions keys
  bool resume = false;       // continue from the newest valid checkpoint in --out
  bool overwrite = false;    // a new run replaces what --out holds (checkpoints, metrics, events, plot)
};

struct TrainSummary {
  int64_t last_step = 0;
  double train_loss = 0;  // mean of the last steps' losses
  double val_loss = -1;   // last evaluation; -1 if there was none
  double tokens_per_s = 0;
  double mfu = 0;
  std::string checkpoint;  // the last checkpoint written (or resumed from)
  bool reporting_rank = true;  // rank 0 (or a single process): the one that prints
};

Result<TrainSummary> run_training(const TrainRequest& request);

// `train --dry-run`: the run the request would start, as the report of
// parameters, FLOPs and memory for its config (model/counts.h); allocates
// nothing.
Result<std::string> training_dry_run(const TrainRequest& request);

}  // namespace sc
