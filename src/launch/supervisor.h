// The supervision loop of `supercluster launch` (docs/fault_tolerance.md):
// run the job, watch its exit and its heartbeats, and when it fails stop the
// whole job, log the failure to RUN/events.jsonl and restart it from the
// newest valid checkpoint after a backoff, until it succeeds, the restart
// budget is spent, or the same failure repeats before any step completes.
//
// It knows nothing of MPI: an attempt is any argv (mpirun ... in production,
// /bin/sh scripts in tests).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sc {

struct SupervisorOptions {
  std::vector<std::string> command;  // one attempt's argv; argv[0] is looked up in PATH
  std::string run_dir;               // RUN: checkpoints/, metrics.jsonl, heartbeat/, events.jsonl
  int ranks = 1;                     // heartbeats expected from ranks 0 .. ranks-1
  int max_restarts = 3;
  double hang_timeout_s = 300;           // a rank's heartbeat unchanged this long is a hang; 0 turns it off
  double backoff_s = 5;                  // delay before a restart, doubling per failure in a row without progress
  double backoff_max_s = 60;             // cap of the delay
  double kill_grace_s = 5;               // SIGTERM, then SIGKILL after this long
  std::string resume_flag = "--resume";  // appended when RUN/checkpoints holds a valid checkpoint
  // Appended to a restart when there is no valid checkpoint to resume from:
  // the job starts over, replacing what its own failed attempt left (the
  // trainer refuses a directory holding another run's output without it).
  std::string start_over_flag = "--overwrite";
  // Set (e.g. by a SIGINT handler) to stop the job and end the supervision.
  const std::atomic<bool>* stop_requested = nullptr;
  // Receives each line of the job's stdout and stderr; default: the
  // launcher's stderr.
  std::function<void(const std::string& line)> output;
};

struct LaunchSummary {
  Status status;        // ok when the job finished; otherwise why the launcher gave up
  std::string outcome;  // "success", "failed" or "interrupted"
  int attempts = 0;
  int restarts = 0;
  int64_t steps_redone = 0;  // sum over restarts of step reached - step resumed from
  int64_t final_step = 0;    // success: the last step; otherwise the newest valid checkpoint's
  double wall_s = 0;
  double useful_s = 0;     // training time this launch added to the run (metrics.jsonl elapsed_s)
  double time_lost_s = 0;  // sum of the failures' time_lost_s
  double goodput = 0;      // useful_s / wall_s
};

class Supervisor {
 public:
  explicit Supervisor(SupervisorOptions options);
  // Runs attempts until the job succeeds or a rule stops it. Writes one
  // event per attempt start and failure, and a final summary event.
  LaunchSummary run();

 private:
  class Launch;
  SupervisorOptions o_;
};

// One line for people: attempts, restarts, steps redone, wall and useful
// time, goodput.
std::string format_launch_summary(const LaunchSummary& summary);

}  // namespace sc
