// RUN/metrics.jsonl: one JSON object per applied optimizer step, appended by
// the trainer (rank 0), read back by a resumed trainer (its loss history),
// the launcher (training time kept, for goodput) and people. Keys:
// docs/checkpoint_format.md; every line has an integer "step".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sc {

struct MetricsRecord {
  int64_t step = 0;
  std::optional<double> loss;       // training loss of the step
  std::optional<double> val_loss;   // when the step evaluated
  std::optional<double> elapsed_s;  // training time the run has kept up to this step
  std::string line;                 // the line as written
};

// Every line that is a JSON object with an integer "step", in file order.
// Other lines (a line torn by a crash) are skipped. A missing file is empty.
std::vector<MetricsRecord> read_metrics(const std::string& path);

class MetricsLog {
 public:
  explicit MetricsLog(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  // A new run: an empty file.
  Status start_empty();
  Status append(const nlohmann::json& line);
  // A resumed run: keeps the lines of steps up to `step` (later ones belong
  // to the segment that was lost) and returns them. `rewrite` false only
  // reads (every rank but the one that writes).
  std::vector<MetricsRecord> keep_through_step(int64_t step, bool rewrite, Status* status);

 private:
  std::string path_;
};

}  // namespace sc
