#include "core/progress.h"

#include <cstdio>

#include "core/log.h"

namespace sc {

ProgressLine::ProgressLine(double interval_s) : interval_s_(interval_s), enabled_(stderr_is_terminal()) {}

bool ProgressLine::due() const { return enabled_ && seconds_since_start() - last_shown_s_ >= interval_s_; }

void ProgressLine::show(const std::string& line) {
  if (!enabled_) return;
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  last_shown_s_ = seconds_since_start();
  shown_any_ = true;
}

void ProgressLine::finish() {
  if (enabled_ && shown_any_) std::fputc('\n', stderr);
  shown_any_ = false;
}

}  // namespace sc
