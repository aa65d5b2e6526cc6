#include "launch/attempt.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/wall_clock.h"
#include "launch/failure_cause.h"
#include "launch/job_process.h"
#include "run/heartbeat.h"

namespace sc {
namespace {
using Clock = std::chrono::steady_clock;

// Output of a job that has exited is drained at most this long: processes
// it left behind are killed first, but a pipe held by something unkillable
// must not stall the launcher.
constexpr double kDrainAfterExitS = 2.0;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Watches heartbeats of ranks 0..ranks-1 for progress and for a rank whose
// beat stopped changing. Times are the launcher's own clock, so clocks of
// other hosts never matter.
class HeartbeatWatch {
 public:
  HeartbeatWatch(std::string dir, int ranks, int64_t start_step, Clock::time_point start)
      : dir_(std::move(dir)), ranks_(static_cast<size_t>(std::max(ranks, 0))), step_reached_(start_step) {
    for (Rank& r : ranks_) r.last_change = start;
  }

  void scan(Clock::time_point now) {
    for (const Heartbeat& beat : read_heartbeats(dir_)) {
      if (beat.step > step_reached_) {
        step_reached_ = beat.step;
        progress_.emplace_back(beat.step, now);
      }
      if (beat.rank < 0 || static_cast<size_t>(beat.rank) >= ranks_.size()) continue;
      Rank& r = ranks_[static_cast<size_t>(beat.rank)];
      if (!r.seen || beat.step != r.step || beat.phase != r.phase || beat.time != r.time || beat.pid != r.pid) {
        r = Rank{true, beat.step, beat.phase, beat.time, beat.pid, now};
      }
    }
  }

  struct Stall {
    std::optional<int> rank;  // empty: every rank finished but the job did not exit
    std::string message;
  };

  // A rank whose heartbeat is unchanged for more than `timeout_s` (the
  // stalest one), ranks that said "done" being finished, not hung. When all
  // said "done" and the job still runs `timeout_s` after the last of them,
  // the job itself is stuck (e.g. in MPI_Finalize).
  std::optional<Stall> find_stall(Clock::time_point now, double timeout_s) const {
    std::optional<size_t> worst;
    double worst_s = timeout_s;
    bool all_done = !ranks_.empty();
    Clock::time_point last_done;
    for (size_t i = 0; i < ranks_.size(); ++i) {
      const double stale_s = seconds_between(ranks_[i].last_change, now);
      if (ranks_[i].phase == "done") {
        last_done = std::max(last_done, ranks_[i].last_change);
        continue;
      }
      all_done = false;
      // Ties (both beats changed between two polls) go to the older beat by
      // the ranks' own clocks: the rank that stopped first is the culprit,
      // the others stopped waiting for it.
      const bool older_beat = worst && stale_s == worst_s && ranks_[i].time < ranks_[*worst].time;
      if (stale_s > worst_s || older_beat) {
        worst_s = stale_s;
        worst = i;
      }
    }
    if (worst) {
      const Rank& r = ranks_[*worst];
      return Stall{static_cast<int>(*worst),
                   fmt::format("rank {} made no progress for more than {} s ({}); stopped the job", *worst, timeout_s,
                               r.seen ? fmt::format("last heartbeat at step {}, phase {}", r.step, r.phase)
                                      : std::string("never sent a heartbeat"))};
    }
    if (all_done && seconds_between(last_done, now) > timeout_s) {
      return Stall{std::nullopt, fmt::format("every rank reported done but the job had not exited {} s later; "
                                             "stopped the job",
                                             timeout_s)};
    }
    return std::nullopt;
  }

  int64_t step_reached() const { return step_reached_; }
  const std::vector<std::pair<int64_t, Clock::time_point>>& progress() const { return progress_; }

 private:
  struct Rank {
    bool seen = false;
    int64_t step = 0;
    std::string phase;
    double time = 0;
    int64_t pid = 0;
    Clock::time_point last_change;
  };
  std::string dir_;
  std::vector<Rank> ranks_;
  int64_t step_reached_;
  std::vector<std::pair<int64_t, Clock::time_point>> progress_;
};

// Splits the job's output into lines ('\n' or '\r', so progress redraws
// become lines too), forwards them and feeds the failure parser.
class OutputPump {
 public:
  OutputPump(const std::function<void(const std::string&)>& output, FailureLineParser* parser)
      : output_(output), parser_(parser) {}

  // Reads what is available now, at most kMaxReads buffers so a chatty job
  // cannot keep the launcher from its other duties; false once the pipe
  // reached end of file.
  bool drain(int fd) {
    if (fd < 0) return false;
    char buf[1 << 14];
    for (int reads = 0; reads < kMaxReads; ++reads) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n > 0) {
        for (ssize_t i = 0; i < n; ++i) {
          if (buf[i] == '\n' || buf[i] == '\r') {
            emit();
          } else {
            partial_.push_back(buf[i]);
            if (partial_.size() >= kMaxLineBytes) emit();
          }
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      emit();  // end of file (or an error): the last line has no newline
      return false;
    }
    return true;
  }

 private:
  static constexpr int kMaxReads = 64;
  static constexpr size_t kMaxLineBytes = 1 << 16;
  void emit() {
    if (partial_.empty()) return;
    output_(partial_);
    parser_->add_line(partial_);
    partial_.clear();
  }
  const std::function<void(const std::string&)>& output_;
  FailureLineParser* parser_;
  std::string partial_;
};

}  // namespace

const char* attempt_end_name(AttemptEnd end) {
  switch (end) {
    case AttemptEnd::kSuccess: return "success";
    case AttemptEnd::kExit: return "exit";
    case AttemptEnd::kSignal: return "signal";
    case AttemptEnd::kHang: return "hang";
    case AttemptEnd::kInterrupted: return "interrupted";
  }
  return "unknown";
}

Result<AttemptResult> run_attempt(const AttemptSpec& o) {
  AttemptResult result;
  result.started = Clock::now();
  result.started_unix = unix_seconds_now();
  SC_ASSIGN_OR_RETURN(
      JobProcess job,
      JobProcess::start(o.argv, {fmt::format("{}={}", kHeartbeatDirEnvVar, o.heartbeat_dir)}, o.marker));
  FailureLineParser parser;
  OutputPump pump(o.output, &parser);
  auto drain = [&] {
    if (!pump.drain(job.output_fd())) job.close_output();
  };
  HeartbeatWatch watch(o.heartbeat_dir, o.ranks, o.start_step, result.started);
  const double scan_interval_s = o.hang_timeout_s > 0 ? std::clamp(o.hang_timeout_s / 10, 0.05, 1.0) : 1.0;
  auto next_scan = result.started;
  std::optional<HeartbeatWatch::Stall> stall;
  bool interrupted = false;
  for (;;) {
    const auto now = Clock::now();
    const int wait_ms = static_cast<int>(std::clamp(seconds_between(now, next_scan) * 1000, 0.0, 100.0));
    pollfd pfd{job.output_fd(), POLLIN, 0};
    ::poll(&pfd, 1, wait_ms);  // a negative fd is ignored: then this only sleeps
    drain();
    if (o.stop_requested && o.stop_requested->load()) {
      interrupted = true;
      break;
    }
    if (job.poll_exit()) break;
    if (Clock::now() >= next_scan) {
      watch.scan(Clock::now());
      if (o.hang_timeout_s > 0) stall = watch.find_stall(Clock::now(), o.hang_timeout_s);
      if (stall) break;
      next_scan =
          Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(scan_interval_s));
    }
  }
  result.failed = Clock::now();
  result.failed_unix = unix_seconds_now();
  if (stall) {
    result.end = AttemptEnd::kHang;
    result.rank = stall->rank;
    result.message = stall->message;
  }
  if (!job.exited()) job.stop(o.kill_grace_s, drain);
  job.kill_leftovers();
  for (const auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int>(kDrainAfterExitS * 1000));
       job.output_fd() >= 0 && Clock::now() < deadline;) {
    pollfd pfd{job.output_fd(), POLLIN, 0};
    ::poll(&pfd, 1, 50);
    drain();
  }
  job.close_output();
  watch.scan(Clock::now());  // beats written just before the end
  result.stopped = Clock::now();
  result.step_reached = watch.step_reached();
  result.progress = watch.progress();
  if (interrupted) {
    result.end = AttemptEnd::kInterrupted;
    result.message = "the launcher was asked to stop";
    return result;
  }
  if (stall) return result;

  const int status = job.wait_status();
  const FailureCause cause = parser.cause();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    result.end = AttemptEnd::kSuccess;
    return result;
  }
  result.rank = cause.rank;
  if (cause.signal) {  // a rank died on a signal; mpirun reported it and exited non-zero
    result.end = AttemptEnd::kSignal;
    result.signal = cause.signal;
    result.message = cause.message;
  } else if (WIFSIGNALED(status)) {  // the job's own process died on a signal
    result.end = AttemptEnd::kSignal;
    result.signal = WTERMSIG(status);
    result.message = fmt::format("the job was killed by {}", signal_name(WTERMSIG(status)));
    if (cause.recognized) {
      result.message = cause.message;
    } else if (!cause.message.empty()) {
      result.message += fmt::format(" (last output: {})", cause.message);
    }
  } else {
    result.end = AttemptEnd::kExit;
    result.exit_code = cause.exit_code.value_or(WEXITSTATUS(status));
    result.message =
        cause.message.empty() ? fmt::format("the job exited with code {}", *result.exit_code) : cause.message;
  }
  return result;
}

}  // namespace sc
