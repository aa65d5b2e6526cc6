// One attempt of a supervised job: start it, forward its output, watch its
// exit and its heartbeats, and stop the whole process tree when it fails,
// hangs or the launcher is asked to stop. What to do next is the
// Supervisor's business (supervisor.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sc {

enum class AttemptEnd { kSuccess, kExit, kSignal, kHang, kInterrupted };
// "success", "exit", "signal", "hang", "interrupted": the `reason` of events.jsonl.
const char* attempt_end_name(AttemptEnd end);

struct AttemptSpec {
  std::vector<std::string> argv;
  std::string heartbeat_dir;  // given to the job as SUPERCLUSTER_HEARTBEAT_DIR
  std::string marker;         // "NAME=value" environment entry unique to this attempt (job_process.h)
  int ranks = 1;
  int64_t start_step = 0;     // the step the attempt resumes from
  double hang_timeout_s = 0;  // 0: no hang detection
  double kill_grace_s = 5;
  const std::atomic<bool>* stop_requested = nullptr;
  std::function<void(const std::string& line)> output;
};

struct AttemptResult {
  using Clock = std::chrono::steady_clock;
  AttemptEnd end = AttemptEnd::kSuccess;
  std::optional<int> rank;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string message;
  int64_t step_reached = 0;  // highest heartbeat step seen (start_step if none)
  // When the highest heartbeat step first reached each value.
  std::vector<std::pair<int64_t, Clock::time_point>> progress;
  Clock::time_point started, failed, stopped;  // start, end detected, job fully stopped
  double started_unix = 0, failed_unix = 0;
};

// Runs the attempt to its end. The job is fully stopped when this returns.
// An error only when the job could not be started at all.
Result<AttemptResult> run_attempt(const AttemptSpec& spec);

}  // namespace sc
