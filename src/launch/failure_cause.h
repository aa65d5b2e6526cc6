// Reads a failed job's output for who failed and why: mpirun's reports of a
// rank that died on a signal or exited non-zero, and the trainer's
// "error: rank R of N: message" line (docs/communicator.md, abort_job).
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace sc {

struct FailureCause {
  std::optional<int> rank;       // the rank at fault, when the output names one
  std::optional<int> signal;     // a rank ended by this signal (mpirun's report)
  std::optional<int> exit_code;  // the failing rank's own exit code (mpirun's report)
  std::string message;           // one line for people: the error or report, else the job's last lines
  bool recognized = false;       // the message comes from a report or error line, not the last lines
};

class FailureLineParser {
 public:
  // Feed every line of the job's output, in order.
  void add_line(std::string_view line);
  // What the lines say. The first report of each kind wins (the root cause
  // comes first; later lines are usually other ranks being torn down), and
  // a rank killed by a signal outranks an error message.
  FailureCause cause() const;
  // The job's own last lines, oldest first: mpirun's boxed reports left
  // out, a line printed again (by another rank) kept once.
  const std::deque<std::string>& job_lines() const { return job_lines_; }

 private:
  struct SignalReport {
    int rank = 0, signal = 0;
    std::string text;
  };
  std::optional<SignalReport> signal_report_;
  std::optional<std::pair<int, std::string>> rank_error_;  // rank, "rank R of N: message"
  std::optional<std::string> plain_error_;                 // "error: message" without a rank
  std::optional<int> process_rank_, process_exit_code_, abort_rank_;
  std::deque<std::string> job_lines_;
  bool in_mpirun_box_ = false;  // between two "-----" rules
};

// "signal 9 (Killed)": a signal number and its description.
std::string signal_name(int signal);

}  // namespace sc
