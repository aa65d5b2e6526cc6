// A status line that redraws in place on a terminal ('\r') at most every
// `interval_s`, and stays silent when stderr is a file or pipe (logs and CI
// get the final summary instead of thousands of redraws).
#pragma once

#include <string>

namespace sc {

class ProgressLine {
 public:
  explicit ProgressLine(double interval_s = 0.1);
  bool due() const;  // cheap: call before formatting a line
  void show(const std::string& line);
  void finish();  // ends the line so the next output starts clean

 private:
  double interval_s_;
  double last_shown_s_ = -1e9;
  bool enabled_;
  bool shown_any_ = false;
};

}  // namespace sc
