#include "launch/supervisor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/file_util.h"
#include "core/log.h"
#include "launch/attempt.h"
#include "launch/heartbeat.h"
#include "launch/restart_policy.h"
#include "train/checkpoint_dir.h"

namespace sc {
namespace fs = std::filesystem;

namespace {
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The step of the newest valid checkpoint in RUN/checkpoints; 0 when none.
int64_t newest_checkpoint_step(const std::string& run_dir) {
  std::vector<std::string> skipped;
  auto found = find_latest_valid_checkpoint(run_dir + "/checkpoints", &skipped);
  for (const std::string& why : skipped) log_debug("launch: checkpoint skipped: {}", why);
  return found.ok() ? found->step : 0;
}

// Modification time of `path` in unix seconds; 0 if it cannot be read.
double modified_unix(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<double>(st.st_mtim.tv_sec) + 1e-9 * static_cast<double>(st.st_mtim.tv_nsec);
}

struct MetricsPoint {
  int64_t step = 0;
  double elapsed_s = 0;
};

// metrics.jsonl's line for `step` (the last one that has it), or its last
// line when `step` is empty. The trainer's elapsed_s counts only training
// time kept in the run: a resumed run continues from the checkpoint's.
std::optional<MetricsPoint> read_metrics_point(const std::string& run_dir, std::optional<int64_t> step) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  std::optional<MetricsPoint> found;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("step") || !j.contains("elapsed_s")) continue;
    if (!j["step"].is_number() || !j["elapsed_s"].is_number()) continue;
    const MetricsPoint point{j["step"].get<int64_t>(), j["elapsed_s"].get<double>()};
    if (!step || point.step == *step) found = point;
  }
  return found;
}

class EventLog {
 public:
  explicit EventLog(std::string path) : path_(std::move(path)) {}
  // One JSON object per line, appended and fsynced: the record of a run's
  // failures must survive the launcher's own crash.
  void append(json event) {
    event["source"] = "launch";  // the trainer appends its own events to the same file
    event["time"] = unix_seconds_now();
    const std::string line = event.dump() + "\n";
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    if (fd >= 0) ok = (::fsync(fd) == 0) && ok;
    if (fd >= 0) ::close(fd);
    if (!ok) log_warn("launch: cannot append to {}: {}", path_, std::strerror(errno));
  }

 private:
  std::string path_;
};

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
}  // namespace

std::string format_launch_summary(const LaunchSummary& s) {
  return fmt::format(
      "launch: {} after {} attempt{} ({} restart{}): step {}, {} step{} redone, wall {:.1f} s, useful {:.1f} s, "
      "time lost {:.1f} s, goodput {:.1f}%",
      s.outcome, s.attempts, s.attempts == 1 ? "" : "s", s.restarts, s.restarts == 1 ? "" : "s", s.final_step,
      s.steps_redone, s.steps_redone == 1 ? "" : "s", s.wall_s, s.useful_s, s.time_lost_s, 100 * s.goodput);
}

Supervisor::Supervisor(SupervisorOptions options) : o_(std::move(options)) {
  if (!o_.output) o_.output = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
}

LaunchSummary Supervisor::run() {
  const auto launch_start = Clock::now();
  LaunchSummary summary;
  summary.outcome = "failed";
  if (o_.command.empty()) {
    summary.status = Status::invalid("launch: no command to run");
    return summary;
  }
  if (Status s = ensure_writable_directory(o_.run_dir); !s.ok()) {
    summary.status = s.with_context("launch: run directory");
    return summary;
  }
  const std::string run_dir = fs::absolute(o_.run_dir).lexically_normal().string();
  const std::string heartbeat_dir = run_dir + "/heartbeat";
  EventLog events(run_dir + "/events.jsonl");

  const int64_t initial_step = newest_checkpoint_step(run_dir);
  const double initial_elapsed_s =
      initial_step > 0 ? read_metrics_point(run_dir, initial_step).value_or(MetricsPoint{}).elapsed_s : 0.0;
  RestartPolicy policy(o_.max_restarts, o_.backoff_s, o_.backoff_max_s);
  bool success = false;
  AttemptResult last;

  for (int attempt = 1;; ++attempt) {
    summary.attempts = attempt;
    const int64_t start_step = newest_checkpoint_step(run_dir);
    std::vector<std::string> argv = o_.command;
    if (start_step > 0 && !o_.resume_flag.empty() && !has_arg(argv, o_.resume_flag)) argv.push_back(o_.resume_flag);
    if (Status s = clear_heartbeats(heartbeat_dir); !s.ok()) {
      summary.status = s.with_context("launch");
      break;
    }
    log_info("launch: attempt {}{}: {}", attempt,
             start_step > 0 ? fmt::format(" (resuming from step {})", start_step) : "", join_command(argv));
    events.append({{"event", "attempt"}, {"attempt", attempt}, {"resumed_from", start_step}, {"command", argv}});

    static const std::string launcher_id =
        fmt::format("{}-{}", ::getpid(), static_cast<int64_t>(unix_seconds_now() * 1000));
    const AttemptSpec spec{.argv = argv,
                           .heartbeat_dir = heartbeat_dir,
                           .marker = fmt::format("SUPERCLUSTER_LAUNCH_ID={}-{}", launcher_id, attempt),
                           .ranks = o_.ranks,
                           .start_step = start_step,
                           .hang_timeout_s = o_.hang_timeout_s,
                           .kill_grace_s = o_.kill_grace_s,
                           .stop_requested = o_.stop_requested,
                           .output = o_.output};
    auto result = run_attempt(spec);
    if (!result.ok()) {  // nothing ran: a missing mpirun will not appear on retry
      summary.status = result.status().with_context("launch");
      events.append({{"event", "failure"},
                     {"attempt", attempt},
                     {"reason", "start"},
                     {"message", result.status().message()},
                     {"action", "give_up"}});
      break;
    }
    last = std::move(result).value();
    if (last.end == AttemptEnd::kSuccess) {
      success = true;
      break;
    }
    if (last.end == AttemptEnd::kInterrupted) {
      summary.outcome = "interrupted";
      summary.status = interrupted_status(newest_checkpoint_step(run_dir));
      events.append(
          {{"event", "interrupted"}, {"attempt", attempt}, {"during", "attempt"}, {"step_reached", last.step_reached}});
      break;
    }

    // A failure: where the next attempt would start, what it cost, and
    // whether restarting can help.
    const int64_t restart_from = newest_checkpoint_step(run_dir);
    const bool progressed = last.step_reached > start_step || restart_from > start_step;
    // Heartbeats say how far the attempt got; for a job that does not beat,
    // the checkpoint and metrics.jsonl it wrote still tell.
    last.step_reached = std::max(last.step_reached, restart_from);
    if (modified_unix(run_dir + "/metrics.jsonl") >= last.started_unix) {
      if (auto point = read_metrics_point(run_dir, std::nullopt))
        last.step_reached = std::max(last.step_reached, point->step);
    }
    const RestartDecision decision = policy.on_failure({.attempt = attempt,
                                                        .progressed = progressed,
                                                        .exit_failure = last.end == AttemptEnd::kExit,
                                                        .exit_code = last.exit_code.value_or(-1),
                                                        .signature = failure_signature(last)});

    // Work lost: from when the run first reached the step the next attempt
    // resumes from (or from this attempt's start, if it saved nothing new)
    // to the failure; plus stopping the job and the backoff.
    // The step is "reached" when a heartbeat first showed it, or else when
    // its checkpoint directory was committed.
    double work_lost_s = seconds_between(last.started, last.failed);
    if (restart_from > start_step) {
      const auto seen = std::find_if(last.progress.begin(), last.progress.end(),
                                     [&](const auto& p) { return p.first >= restart_from; });
      const double committed_unix = modified_unix(run_dir + "/checkpoints/" + checkpoint_dir_name(restart_from));
      if (seen != last.progress.end()) {
        work_lost_s = seconds_between(seen->second, last.failed);
      } else if (committed_unix >= last.started_unix) {
        work_lost_s = last.failed_unix - committed_unix;
      }
    }
    work_lost_s = std::max(0.0, work_lost_s);
    const double backoff_s = decision.backoff_s;
    const double teardown_s = seconds_between(last.failed, last.stopped);
    const double time_lost_s = work_lost_s + teardown_s + backoff_s;
    const int64_t steps_lost = std::max<int64_t>(0, last.step_reached - restart_from);
    summary.time_lost_s += time_lost_s;

    json event = {{"event", "failure"},
                  {"attempt", attempt},
                  {"reason", attempt_end_name(last.end)},
                  {"rank", optional_json(last.rank)},
                  {"step_reached", last.step_reached},
                  {"resumed_from", start_step},
                  {"restart_from", restart_from},
                  {"steps_lost", steps_lost},
                  {"work_lost_s", work_lost_s},
                  {"teardown_s", teardown_s},
                  {"backoff_s", backoff_s},
                  {"time_lost_s", time_lost_s},
                  {"message", last.message},
                  {"action", decision.restart ? "restart" : "give_up"}};
    if (last.exit_code) event["exit_code"] = *last.exit_code;
    if (last.signal) event["signal"] = *last.signal;
    if (last.end == AttemptEnd::kHang) event["hang_timeout_s"] = o_.hang_timeout_s;
    events.append(event);
    log_warn("launch: attempt {} failed ({}{}) at step {}: {}", attempt, attempt_end_name(last.end),
             last.rank ? fmt::format(", rank {}", *last.rank) : "", last.step_reached, last.message);
    if (!decision.restart) {
      summary.status = Status::internal("launch: {}: {}", decision.why_not, last.message);
      break;
    }
    summary.steps_redone += steps_lost;
    summary.restarts = policy.restarts();
    log_warn("launch: restart {} of {} from step {} in {:.1f} s", summary.restarts, o_.max_restarts, restart_from,
             backoff_s);
    if (!sleep_unless_stopped(backoff_s, o_.stop_requested)) {
      summary.outcome = "interrupted";
      summary.status = interrupted_status(restart_from);
      events.append({{"event", "interrupted"}, {"attempt", attempt}, {"during", "backoff"}});
      break;
    }
  }

  // Useful time is the training time the run kept (metrics.jsonl's
  // elapsed_s at the last step kept) minus what it had before this launch.
  std::optional<MetricsPoint> end_point;
  if (success) {
    summary.outcome = "success";
    end_point = read_metrics_point(run_dir, std::nullopt);
    summary.final_step = std::max(last.step_reached, end_point ? end_point->step : 0);
  } else {
    summary.final_step = newest_checkpoint_step(run_dir);
    end_point = read_metrics_point(run_dir, summary.final_step);
  }
  summary.wall_s = seconds_between(launch_start, Clock::now());
  summary.useful_s = end_point ? std::max(0.0, end_point->elapsed_s - initial_elapsed_s) : 0.0;
  summary.goodput = summary.wall_s > 0 ? std::min(1.0, summary.useful_s / summary.wall_s) : 0.0;
  events.append({{"event", "summary"},
                 {"outcome", summary.outcome},
                 {"attempts", summary.attempts},
                 {"restarts", summary.restarts},
                 {"steps_redone", summary.steps_redone},
                 {"final_step", summary.final_step},
                 {"wall_s", summary.wall_s},
                 {"useful_s", summary.useful_s},
                 {"time_lost_s", summary.time_lost_s},
                 {"goodput", summary.goodput},
                 {"exit_code", success ? 0 : 1},
                 {"message", summary.status.message()}});
  return summary;
}

}  // namespace sc
