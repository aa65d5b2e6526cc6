#include "launch/supervisor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/file_util.h"
#include "core/log.h"
#include "core/wall_clock.h"
#include "launch/attempt.h"
#include "launch/restart_policy.h"
#include "run/checkpoint_store.h"
#include "run/event_log.h"
#include "run/heartbeat.h"
#include "run/metrics_log.h"
#include "run/run_paths.h"

namespace sc {
namespace fs = std::filesystem;

namespace {
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The step of the newest valid checkpoint in RUN/checkpoints; 0 when none.
int64_t newest_checkpoint_step(const RunPaths& run) {
  std::vector<std::string> skipped;
  auto found = find_latest_valid_checkpoint(run.checkpoints(), &skipped);
  for (const std::string& why : skipped) log_debug("launch: checkpoint skipped: {}", why);
  return found.ok() ? found->step : 0;
}

// Modification time of `path` in unix seconds; 0 if it cannot be read.
double modified_unix(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<double>(st.st_mtim.tv_sec) + 1e-9 * static_cast<double>(st.st_mtim.tv_nsec);
}

// metrics.jsonl's record for `step` (the last one that has it), or its last
// record when `step` is empty; only records with elapsed_s. The trainer's
// elapsed_s counts only training time kept in the run: a resumed run
// continues from the checkpoint's.
std::optional<MetricsRecord> metrics_at(const RunPaths& run, std::optional<int64_t> step) {
  std::optional<MetricsRecord> found;
  for (MetricsRecord& record : read_metrics(run.metrics())) {
    if (record.elapsed_s && (!step || record.step == *step)) found = std::move(record);
  }
  return found;
}

bool has_arg(const std::vector<std::string>& argv, const std::string& arg) {
  return std::find(argv.begin(), argv.end(), arg) != argv.end();
}

std::string join_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    out += a.find_first_of(" \t'\"") == std::string::npos && !a.empty() ? a : "'" + a + "'";
  }
  return out;
}

// Two failures are "the same" when reason, rank, code and message match.
std::string failure_signature(const AttemptResult& r) {
  return fmt::format("{}|{}|{}|{}|{}", attempt_end_name(r.end), r.rank.value_or(-1), r.exit_code.value_or(-1),
                     r.signal.value_or(-1), r.message);
}

json optional_json(const std::optional<int>& value) { return value ? json(*value) : json(nullptr); }

LaunchSummary failed_summary() {
  LaunchSummary summary;
  summary.outcome = "failed";  // until the job succeeds or is interrupted
  return summary;
}

Status interrupted_status(int64_t checkpoint_step) {
  return Status::internal("launch: interrupted; the same command continues the run from step {}", checkpoint_step);
}

// False when a stop was requested before `seconds` passed.
bool sleep_unless_stopped(double seconds, const std::atomic<bool>* stop_requested) {
  const auto wake = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < wake) {
    if (stop_requested && stop_requested->load()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !(stop_requested && stop_requested->load());
}

// Work lost to a failure: from when the run first reached the step the next
// attempt resumes from (or from the attempt's start, if it saved nothing
// new) to the failure. The step is "reached" when a heartbeat first showed
// it, or else when its checkpoint directory was committed.
double work_lost_s(const AttemptResult& last, int64_t start_step, int64_t restart_from, const RunPaths& run) {
  double lost = seconds_between(last.started, last.failed);
  if (restart_from > start_step) {
    const auto seen = std::find_if(last.progress.begin(), last.progress.end(),
                                   [&](const auto& p) { return p.first >= restart_from; });
    const double committed_unix = modified_unix(run.checkpoints() + "/" + checkpoint_dir_name(restart_from));
    if (seen != last.progress.end()) {
      lost = seconds_between(seen->second, last.failed);
    } else if (committed_unix >= last.started_unix) {
      lost = last.failed_unix - committed_unix;
    }
  }
  return std::max(0.0, lost);
}

// Heartbeats say how far an attempt got; for a job that does not beat, the
// checkpoint and metrics.jsonl it wrote still tell.
int64_t step_reached(const AttemptResult& last, int64_t restart_from, const RunPaths& run) {
  int64_t reached = std::max(last.step_reached, restart_from);
  if (modified_unix(run.metrics()) >= last.started_unix) {
    if (auto record = metrics_at(run, std::nullopt)) reached = std::max(reached, record->step);
  }
  return reached;
}

// A failed attempt: where the next one would start and what the failure cost.
struct FailureCost {
  int64_t restart_from = 0;
  int64_t steps_lost = 0;
  double work_lost_s = 0, teardown_s = 0, backoff_s = 0;
  double time_lost_s() const { return work_lost_s + teardown_s + backoff_s; }
};

json failure_event(int attempt, const AttemptResult& last, int64_t start_step, const FailureCost& cost,
                   const RestartDecision& decision, double hang_timeout_s) {
  json event = {{"event", "failure"},
                {"attempt", attempt},
                {"reason", attempt_end_name(last.end)},
                {"rank", optional_json(last.rank)},
                {"step_reached", last.step_reached},
                {"resumed_from", start_step},
                {"restart_from", cost.restart_from},
                {"steps_lost", cost.steps_lost},
                {"work_lost_s", cost.work_lost_s},
                {"teardown_s", cost.teardown_s},
                {"backoff_s", cost.backoff_s},
                {"time_lost_s", cost.time_lost_s()},
                {"message", last.message},
                {"action", decision.restart ? "restart" : "give_up"}};
  if (last.exit_code) event["exit_code"] = *last.exit_code;
  if (last.signal) event["signal"] = *last.signal;
  if (last.end == AttemptEnd::kHang) event["hang_timeout_s"] = hang_timeout_s;
  return event;
}

json summary_event(const LaunchSummary& s, bool success) {
  return {{"event", "summary"},         {"outcome", s.outcome},
          {"attempts", s.attempts},     {"restarts", s.restarts},
          {"steps_redone", s.steps_redone}, {"final_step", s.final_step},
          {"wall_s", s.wall_s},         {"useful_s", s.useful_s},
          {"time_lost_s", s.time_lost_s}, {"goodput", s.goodput},
          {"exit_code", success ? 0 : 1}, {"message", s.status.message()}};
}
}  // namespace

std::string format_launch_summary(const LaunchSummary& s) {
  return fmt::format(
      "launch: {} after {} attempt{} ({} restart{}): step {}, {} step{} redone, wall {:.1f} s, useful {:.1f} s, "
      "time lost {:.1f} s, goodput {:.1f}%",
      s.outcome, s.attempts, s.attempts == 1 ? "" : "s", s.restarts, s.restarts == 1 ? "" : "s", s.final_step,
      s.steps_redone, s.steps_redone == 1 ? "" : "s", s.wall_s, s.useful_s, s.time_lost_s, 100 * s.goodput);
}

// One launch: the run it watches, its event log, its restart rules, and what
// it has found so far.
class Supervisor::Launch {
 public:
  Launch(const SupervisorOptions& o, const std::string& run_dir)
      : o_(o),
        run_(fs::absolute(run_dir).lexically_normal().string()),
        events_(run_.events(), "launch"),
        policy_(o.max_restarts, o.backoff_s, o.backoff_max_s) {}

  LaunchSummary run() {
    const auto launch_start = Clock::now();
    const int64_t initial_step = newest_checkpoint_step(run_);
    const double initial_elapsed_s =
        initial_step > 0 ? metrics_at(run_, initial_step).value_or(MetricsRecord{}).elapsed_s.value_or(0.0) : 0.0;
    bool success = false;
    for (int attempt = 1;; ++attempt) {
      summary_.attempts = attempt;
      const Next next = run_attempt_number(attempt);
      if (next == Next::kRetry) continue;
      success = next == Next::kSucceeded;
      break;
    }
    finish(success, launch_start, initial_elapsed_s);
    return summary_;
  }

 private:
  enum class Next { kRetry, kSucceeded, kStop };

  // Starts attempt `attempt` (resuming from the newest valid checkpoint) and
  // handles its end.
  Next run_attempt_number(int attempt) {
    const int64_t start_step = newest_checkpoint_step(run_);
    std::vector<std::string> argv = o_.command;
    if (start_step > 0 && !o_.resume_flag.empty() && !has_arg(argv, o_.resume_flag)) {
      argv.push_back(o_.resume_flag);
    } else if (start_step == 0 && attempt > 1 && !o_.start_over_flag.empty() && !has_arg(argv, o_.start_over_flag)) {
      argv.push_back(o_.start_over_flag);
    }
    if (Status s = clear_heartbeats(run_.heartbeats()); !s.ok()) {
      summary_.status = s.with_context("launch");
      return Next::kStop;
    }
    log_info("launch: attempt {}{}: {}", attempt,
             start_step > 0 ? fmt::format(" (resuming from step {})", start_step) : "", join_command(argv));
    events_.append({{"event", "attempt"}, {"attempt", attempt}, {"resumed_from", start_step}, {"command", argv}});
    static const std::string launcher_id =
        fmt::format("{}-{}", ::getpid(), static_cast<int64_t>(unix_seconds_now() * 1000));
    auto result = run_attempt({.argv = argv,
                               .heartbeat_dir = run_.heartbeats(),
                               .marker = fmt::format("SUPERCLUSTER_LAUNCH_ID={}-{}", launcher_id, attempt),
                               .ranks = o_.ranks,
                               .start_step = start_step,
                               .hang_timeout_s = o_.hang_timeout_s,
                               .kill_grace_s = o_.kill_grace_s,
                               .stop_requested = o_.stop_requested,
                               .output = o_.output});
    if (!result.ok()) {  // nothing ran: a missing mpirun will not appear on retry
      summary_.status = result.status().with_context("launch");
      events_.append({{"event", "failure"}, {"attempt", attempt}, {"reason", "start"},
                      {"message", result.status().message()}, {"action", "give_up"}});
      return Next::kStop;
    }
    last_ = std::move(result).value();
    if (last_.end == AttemptEnd::kSuccess) return Next::kSucceeded;
    if (last_.end == AttemptEnd::kInterrupted) {
      summary_.outcome = "interrupted";
      summary_.status = interrupted_status(newest_checkpoint_step(run_));
      events_.append({{"event", "interrupted"}, {"attempt", attempt}, {"during", "attempt"},
                      {"step_reached", last_.step_reached}});
      return Next::kStop;
    }
    return after_failure(attempt, start_step);
  }

  // A failure: logs what it cost, and restarts after the backoff when the
  // rules allow it.
  Next after_failure(int attempt, int64_t start_step) {
    FailureCost cost;
    cost.restart_from = newest_checkpoint_step(run_);
    const bool progressed = last_.step_reached > start_step || cost.restart_from > start_step;
    last_.step_reached = step_reached(last_, cost.restart_from, run_);
    const RestartDecision decision = policy_.on_failure({.attempt = attempt,
                                                         .progressed = progressed,
                                                         .exit_failure = last_.end == AttemptEnd::kExit,
                                                         .exit_code = last_.exit_code.value_or(-1),
                                                         .signature = failure_signature(last_)});
    cost.work_lost_s = work_lost_s(last_, start_step, cost.restart_from, run_);
    cost.teardown_s = seconds_between(last_.failed, last_.stopped);
    cost.backoff_s = decision.backoff_s;
    cost.steps_lost = std::max<int64_t>(0, last_.step_reached - cost.restart_from);
    summary_.time_lost_s += cost.time_lost_s();
    events_.append(failure_event(attempt, last_, start_step, cost, decision, o_.hang_timeout_s));
    log_warn("launch: attempt {} failed ({}{}) at step {}: {}", attempt, attempt_end_name(last_.end),
             last_.rank ? fmt::format(", rank {}", *last_.rank) : "", last_.step_reached, last_.message);
    if (!decision.restart) {
      summary_.status = Status::internal("launch: {}: {}", decision.why_not, last_.message);
      return Next::kStop;
    }
    summary_.steps_redone += cost.steps_lost;
    summary_.restarts = policy_.restarts();
    log_warn("launch: restart {} of {} from step {} in {:.1f} s", summary_.restarts, o_.max_restarts,
             cost.restart_from, cost.backoff_s);
    if (!sleep_unless_stopped(cost.backoff_s, o_.stop_requested)) {
      summary_.outcome = "interrupted";
      summary_.status = interrupted_status(cost.restart_from);
      events_.append({{"event", "interrupted"}, {"attempt", attempt}, {"during", "backoff"}});
      return Next::kStop;
    }
    return Next::kRetry;
  }

  // Useful time is the training time the run kept (metrics.jsonl's
  // elapsed_s at the last step kept) minus what it had before this launch.
  void finish(bool success, Clock::time_point launch_start, double initial_elapsed_s) {
    std::optional<MetricsRecord> end_point;
    if (success) {
      summary_.outcome = "success";
      end_point = metrics_at(run_, std::nullopt);
      summary_.final_step = std::max(last_.step_reached, end_point ? end_point->step : 0);
    } else {
      summary_.final_step = newest_checkpoint_step(run_);
      end_point = metrics_at(run_, summary_.final_step);
    }
    summary_.wall_s = seconds_between(launch_start, Clock::now());
    summary_.useful_s = end_point ? std::max(0.0, *end_point->elapsed_s - initial_elapsed_s) : 0.0;
    summary_.goodput = summary_.wall_s > 0 ? std::min(1.0, summary_.useful_s / summary_.wall_s) : 0.0;
    events_.append(summary_event(summary_, success));
  }

  const SupervisorOptions& o_;
  RunPaths run_;
  EventLog events_;
  RestartPolicy policy_;
  LaunchSummary summary_ = failed_summary();
  AttemptResult last_;
};

Supervisor::Supervisor(SupervisorOptions options) : o_(std::move(options)) {
  if (!o_.output) o_.output = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
}

LaunchSummary Supervisor::run() {
  LaunchSummary summary = failed_summary();
  if (o_.command.empty()) {
    summary.status = Status::invalid("launch: no command to run");
    return summary;
  }
  if (Status s = ensure_writable_directory(o_.run_dir); !s.ok()) {
    summary.status = s.with_context("launch: run directory");
    return summary;
  }
  return Launch(o_, o_.run_dir).run();
}

}  // namespace sc
