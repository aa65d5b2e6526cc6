#include "train/progress_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "core/human_format.h"
#include "core/log.h"

namespace sc {

void ProgressReport::count_step(double tokens, double now_s, bool force) {
  window_tokens_ += tokens;
  if (now_s - window_start_s_ < 1.0 && !force) return;
  tokens_per_s_ = window_tokens_ / std::max(1e-9, now_s - window_start_s_);
  mfu_ = tokens_per_s_ * flops_per_token_ / peak_flops_;
  window_start_s_ = now_s;
  window_tokens_ = 0;
}

void ProgressReport::show(const ProgressFigures& f, double now_s, bool important) {
  if (!prints_) return;
  const bool terminal = stderr_is_terminal();
  if (terminal ? !(line_.due() || important) : !(now_s - last_plain_line_s_ >= 10.0 || important)) return;
  const std::string line = fmt::format(
      "step {:>{}}/{} | loss {:.4f} | val {} | lr {:.2e}{} | {} tok/s | MFU {:.1f}% | ETA {}", f.step,
      std::to_string(f.steps).size(), f.steps, f.loss, f.val_loss >= 0 ? fmt::format("{:.4f}", f.val_loss) : "  -   ",
      f.lr, f.extra, human_count(tokens_per_s_), 100.0 * mfu_, human_duration(f.eta_s));
  if (terminal) {
    line_.show(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
    last_plain_line_s_ = now_s;
  }
}

}  // namespace sc
