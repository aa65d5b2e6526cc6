// What a run directory already holds, for a `train` that would start a new
// run there: a new run never truncates another run's metrics.jsonl or prunes
// checkpoints it did not write, so it refuses a directory that holds any
// (valid or not) unless told to replace them (`train --overwrite`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "run/run_paths.h"

namespace sc {

struct ExistingRun {
  std::vector<std::string> checkpoints;  // "step_00000010", or "step_00000010 (not valid: ...)", newest first
  int64_t metrics_lines = 0;             // lines in metrics.jsonl
  bool empty() const { return checkpoints.empty() && metrics_lines == 0; }
  // "checkpoints step_00000010 (not valid: no manifest), step_00000005; metrics.jsonl of 12 lines",
  // naming at most a few checkpoints.
  std::string describe() const;
};

ExistingRun find_existing_run(const RunPaths& run);

// Removes a previous run's outputs: checkpoints/, metrics.jsonl, loss.svg.
// events.jsonl stays (it is the directory's history, shared with a
// launcher that may be restarting this very run), as do heartbeat/ (the
// launcher's) and any other file.
Status remove_run_outputs(const RunPaths& run);

}  // namespace sc
