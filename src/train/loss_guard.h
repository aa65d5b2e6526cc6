// The loss-spike / NaN guard. A step whose loss or gradient norm is not
// finite, or whose loss exceeds `spike_factor` times the mean of the recent
// good steps, is not applied (the update is skipped); after `max_bad_in_row`
// such steps in a row the trainer rolls back to its last checkpoint and goes
// on with the batches after the offending ones (the remedy of the PaLM
// report: restart before the spike, skip the data that caused it). Every
// verdict is a function of the step's global loss and norm, which every rank
// holds identically, so all ranks decide the same.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"

namespace sc {

struct LossGuardOptions {
  double spike_factor = 3.0;  // 0: no spike check (non-finite values are always caught)
  int window = 20;            // good steps averaged; the spike check needs half of them
  int max_bad_in_row = 3;     // then roll back
};

class LossGuard {
 public:
  enum class Verdict { kApply, kSkip, kRollback };

  explicit LossGuard(LossGuardOptions options = {}) : options_(options) {}

  // The verdict on a step; for kSkip and kRollback, `why` says what was wrong.
  Verdict check(double loss, double grad_norm, std::string* why);
  // After a rollback the recent losses are those of the checkpoint. `state`
  // is state() as a checkpoint holds it (null: none); anything else is an
  // error naming `source`.
  Status restore(const nlohmann::json& state, const std::string& source);
  nlohmann::json state() const;
  int bad_in_row() const { return bad_in_row_; }

 private:
  LossGuardOptions options_;
  std::deque<double> recent_;  // losses of the last good steps
  int bad_in_row_ = 0;
};

}  // namespace sc
