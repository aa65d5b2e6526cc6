#include "launch/restart_policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace sc {

double restart_backoff_s(double backoff_s, double backoff_max_s, int failures_in_a_row) {
  const int doublings = std::clamp(failures_in_a_row - 1, 0, 60);
  return std::min(backoff_max_s, backoff_s * std::ldexp(1.0, doublings));
}

RestartDecision RestartPolicy::on_failure(const FailedAttempt& f) {
  RestartDecision decision;
  const bool same_as_previous = !f.progressed && previous_no_progress_signature_ == f.signature;
  previous_no_progress_signature_ = f.progressed ? std::nullopt : std::optional<std::string>(f.signature);
  failures_in_a_row_ = f.progressed ? 1 : failures_in_a_row_ + 1;
  // A command that fails on its own before its first step (a bad flag, a
  // missing file) fails the same way every time; a crash or a hang may not.
  if (!f.progressed && f.attempt == 1 && f.exit_failure) {
    decision.why_not = fmt::format(
        "the job failed before completing a step (exit code {}); not restarting, the same command would fail again",
        f.exit_code);
  } else if (same_as_previous) {
    decision.why_not = fmt::format("attempts {} and {} failed the same way before completing a step; not restarting",
                                   f.attempt - 1, f.attempt);
  } else if (restarts_ >= max_restarts_) {
    decision.why_not = fmt::format("restart limit reached ({} restart{}, --max-restarts)", max_restarts_,
                                   max_restarts_ == 1 ? "" : "s");
  }
  if (!decision.why_not.empty()) return decision;
  ++restarts_;
  decision.restart = true;
  decision.backoff_s = restart_backoff_s(backoff_s_, backoff_max_s_, failures_in_a_row_);
  return decision;
}

}  // namespace sc
