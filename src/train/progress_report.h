// What a person watches while a run trains: throughput and MFU over windows
// of about a second, and one progress line (step, loss, validation loss,
// learning rate, tokens/s, MFU, ETA) redrawn in place on a terminal, or
// written every 10 s to a log. Only the reporting rank prints.
#pragma once

#include <cstdint>
#include <string>

#include "core/progress.h"

namespace sc {

struct ProgressFigures {
  int64_t step = 0, steps = 0;  // steps: the length of the run's schedule
  double loss = 0;
  double val_loss = -1;         // the last evaluation; -1 if none yet
  double lr = 0;
  std::string extra;            // e.g. " | balance 1.07" for MoE
  double eta_s = 0;
};

class ProgressReport {
 public:
  // `model_flops_per_token` and `peak_flops` (the job's: every rank's
  // threads) give MFU; `prints` is false on ranks that do not report.
  ProgressReport(double model_flops_per_token, double peak_flops, bool prints)
      : flops_per_token_(model_flops_per_token), peak_flops_(peak_flops), prints_(prints) {}

  // After each applied step at `now_s`: tokens/s and MFU over the window
  // since the last update, renewed once it spans a second or when `force`d
  // (the first and last step).
  void count_step(double tokens, double now_s, bool force);
  double tokens_per_s() const { return tokens_per_s_; }
  double mfu() const { return mfu_; }

  // Shows the progress line; `important` ones (an evaluation, the last
  // step) are always shown, others at most every 0.2 s on a terminal and
  // every 10 s in a log.
  void show(const ProgressFigures& figures, double now_s, bool important);
  void finish() { line_.finish(); }

 private:
  double flops_per_token_, peak_flops_;
  bool prints_;
  double window_start_s_ = 0, window_tokens_ = 0, tokens_per_s_ = 0, mfu_ = 0;
  double last_plain_line_s_ = -1e9;
  ProgressLine line_{0.2};
};

}  // namespace sc
