// When `supercluster launch` restarts a failed job, and after how long
// (docs/fault_tolerance.md, "Restart rules"). Kept apart from the process
// handling so the rules read in one place and are tested without processes.
#pragma once

#include <optional>
#include <string>

namespace sc {

struct FailedAttempt {
  int attempt = 1;            // 1-based
  bool progressed = false;    // completed a step past the one it started from
  bool exit_failure = false;  // exited non-zero on its own (not a signal, not a hang)
  int exit_code = 0;
  std::string signature;  // equal for "the same failure" (reason, rank, code or signal, message)
};

struct RestartDecision {
  bool restart = false;
  double backoff_s = 0;  // wait this long first
  std::string why_not;   // when not restarting
};

class RestartPolicy {
 public:
  RestartPolicy(int max_restarts, double backoff_s, double backoff_max_s)
      : max_restarts_(max_restarts), backoff_s_(backoff_s), backoff_max_s_(backoff_max_s) {}

  // Call once per failed attempt, in order.
  RestartDecision on_failure(const FailedAttempt& failure);
  int restarts() const { return restarts_; }

 private:
  int max_restarts_;
  double backoff_s_, backoff_max_s_;
  int restarts_ = 0;
  int failures_in_a_row_ = 0;  // since an attempt last made progress
  std::optional<std::string> previous_no_progress_signature_;
};

// The delay before a restart after `failures_in_a_row` failures (1 for the
// first since the job last made progress): backoff_s, doubled for each
// further one, capped at backoff_max_s.
double restart_backoff_s(double backoff_s, double backoff_max_s, int failures_in_a_row);

}  // namespace sc
