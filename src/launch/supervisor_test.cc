// The supervision loop on small /bin/sh jobs that do what a training job
// does: write heartbeats, metrics and checkpoints, then exit, die on a
// signal or hang. No MPI needed.
#include "launch/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/file_util.h"
#include "core/log.h"
#include "checkpoint_test_util.h"
#include "test_util.h"

namespace sc {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// Shell functions the job scripts use:
//   beat RANK STEP PHASE   write a heartbeat like the trainer does
//   metric STEP ELAPSED    append a metrics.jsonl line
//   checkpoint step_N      commit a valid checkpoint (a copy of a template)
//   $attempt               1 on the first run of the script, 2 on the next...
const char* kPrelude = R"SH(
beat() { printf '{"rank":%s,"pid":%s,"step":%s,"phase":"%s","time":%s}\n' "$1" $$ "$2" "$3" "$(date +%s.%N)" \
           > "$SUPERCLUSTER_HEARTBEAT_DIR/.b$1" && mv "$SUPERCLUSTER_HEARTBEAT_DIR/.b$1" "$SUPERCLUSTER_HEARTBEAT_DIR/rank-$1.json"; }
metric() { echo "{\"step\":$1,\"elapsed_s\":$2}" >> "$RUN/metrics.jsonl"; }
checkpoint() { mkdir -p "$RUN/checkpoints" && cp -r "$TEMPLATES/$1" "$RUN/checkpoints/.c" && mv "$RUN/checkpoints/.c" "$RUN/checkpoints/$1"; }
attempt=$(( $(cat "$RUN/attempts" 2>/dev/null || echo 0) + 1 )); echo $attempt > "$RUN/attempts"
)SH";

// Gone, or a zombie waiting for an init that may not reap it.
bool process_gone(pid_t pid) {
  const std::string stat = testing::read_text("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return stat.empty() || (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z');
}

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_log_level_ = log_level();
    set_log_level(LogLevel::kWarn);  // each attempt's command line is long
    run_ = dir_.file("run");
    templates_ = dir_.file("templates");
    fs::create_directories(run_);
    options_.run_dir = run_;
    options_.ranks = 1;
    options_.max_restarts = 3;
    options_.hang_timeout_s = 0;
    options_.backoff_s = 0.01;
    options_.backoff_max_s = 0.05;
    options_.kill_grace_s = 0.5;
    options_.output = [this](const std::string& line) { lines_.push_back(line); };
  }

  void TearDown() override { set_log_level(saved_log_level_); }

  // A valid checkpoint of `step` that scripts copy into RUN/checkpoints.
  void make_template(int64_t step) {
    Status s = testing::write_checkpoint(
        templates_, step,
        [&](const std::string& dir) {
          return write_file_atomic(dir + "/state.txt", "step " + std::to_string(step) + "\n");
        },
        0);
    ASSERT_TRUE(s.ok()) << s.message();
  }

  LaunchSummary run(const std::string& body) {
    const std::string script = "RUN='" + run_ + "'; TEMPLATES='" + templates_ + "'\n" + kPrelude + body;
    // "sh" becomes $0, so an appended --resume arrives as $1.
    options_.command = {"/bin/sh", "-c", script, "sh"};
    return Supervisor(options_).run();
  }

  std::vector<json> events(const std::string& kind) const {
    std::vector<json> found;
    std::ifstream in(run_ + "/events.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      json j = json::parse(line, nullptr, false);
      EXPECT_TRUE(j.is_object()) << "not JSON: " << line;
      if (j.is_object() && j.value("event", "") == kind) found.push_back(j);
    }
    return found;
  }

  bool output_has(const std::string& text) const {
    for (const std::string& line : lines_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

  LogLevel saved_log_level_ = LogLevel::kInfo;
  testing::TempDir dir_;
  std::string run_, templates_;
  SupervisorOptions options_;
  std::vector<std::string> lines_;
};

TEST_F(SupervisorTest, SuccessForwardsOutputSetsHeartbeatDirAndWritesSummary) {
  LaunchSummary s = run(R"SH(
echo "heartbeats in $SUPERCLUSTER_HEARTBEAT_DIR"
echo "a line on stderr" >&2
printf 'progress 1\rprogress 2\n'
for i in 1 2 3; do beat 0 $i train; metric $i $i.5; done
beat 0 3 done
printf 'no newline at the end'
)SH");
  ASSERT_TRUE(s.status.ok()) << s.status.message();
  EXPECT_EQ(s.outcome, "success");
  EXPECT_EQ(s.attempts, 1);
  EXPECT_EQ(s.restarts, 0);
  EXPECT_EQ(s.final_step, 3);
  EXPECT_DOUBLE_EQ(s.useful_s, 3.5);
  EXPECT_GT(s.wall_s, 0);
  EXPECT_GT(s.goodput, 0);
  EXPECT_TRUE(output_has("heartbeats in " + fs::absolute(run_).string() + "/heartbeat"));
  EXPECT_TRUE(output_has("a line on stderr"));
  EXPECT_TRUE(output_has("progress 1"));
  EXPECT_TRUE(output_has("progress 2"));
  EXPECT_TRUE(output_has("no newline at the end"));
  ASSERT_EQ(events("attempt").size(), 1u);
  EXPECT_EQ(events("attempt")[0]["resumed_from"], 0);
  EXPECT_TRUE(events("failure").empty());
  ASSERT_EQ(events("summary").size(), 1u);
  const json summary = events("summary")[0];
  EXPECT_EQ(summary["outcome"], "success");
  EXPECT_EQ(summary["exit_code"], 0);
  EXPECT_EQ(summary["final_step"], 3);
  EXPECT_EQ(summary["attempts"], 1);
  EXPECT_NE(format_launch_summary(s).find("success after 1 attempt (0 restarts)"), std::string::npos)
      << format_launch_summary(s);
}

TEST_F(SupervisorTest, KilledRankIsRestartedFromTheNewestCheckpointWithResume) {
  make_template(5);
  LaunchSummary s = run(R"SH(
if [ "$attempt" = 1 ]; then
  for i in 1 2 3 4 5 6 7; do beat 0 $i train; metric $i $i; [ $i = 5 ] && checkpoint step_00000005; done
  echo "before the crash"
  kill -9 $$
fi
echo "attempt $attempt args: $*"
# A resumed trainer keeps metrics up to its checkpoint, then goes on.
head -n 5 "$RUN/metrics.jsonl" > "$RUN/m" && mv "$RUN/m" "$RUN/metrics.jsonl"
for i in 6 7 8 9 10; do beat 0 $i train; metric $i $i; done
beat 0 10 done
)SH");
  ASSERT_TRUE(s.status.ok()) << s.status.message();
  EXPECT_EQ(s.attempts, 2);
  EXPECT_EQ(s.restarts, 1);
  EXPECT_EQ(s.steps_redone, 2);  // reached 7, resumed from 5
  EXPECT_EQ(s.final_step, 10);
  EXPECT_DOUBLE_EQ(s.useful_s, 10);
  EXPECT_TRUE(output_has("attempt 2 args: --resume"));
  const std::vector<json> failures = events("failure");
  ASSERT_EQ(failures.size(), 1u);
  const json& f = failures[0];
  EXPECT_EQ(f["attempt"], 1);
  EXPECT_EQ(f["reason"], "signal");
  EXPECT_EQ(f["signal"], 9);
  EXPECT_TRUE(f["rank"].is_null());  // a bare process, not an mpirun report
  EXPECT_EQ(f["step_reached"], 7);
  EXPECT_EQ(f["resumed_from"], 0);
  EXPECT_EQ(f["restart_from"], 5);
  EXPECT_EQ(f["steps_lost"], 2);
  EXPECT_EQ(f["action"], "restart");
  EXPECT_DOUBLE_EQ(f["backoff_s"].get<double>(), 0.01);
  EXPECT_GE(f["time_lost_s"].get<double>() + 1e-9, f["backoff_s"].get<double>() + f["work_lost_s"].get<double>());
  EXPECT_EQ(f["message"], "the job was killed by signal 9 (Killed) (last output: before the crash)");
  const std::vector<json> attempts = events("attempt");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[1]["resumed_from"], 5);
  EXPECT_EQ(attempts[1]["command"].back(), "--resume");
  EXPECT_EQ(events("summary")[0]["steps_redone"], 2);
}

TEST_F(SupervisorTest, MpirunReportOfADeadRankNamesRankAndSignal) {
  LaunchSummary s = run(R"SH(
if [ "$attempt" = 1 ]; then
  beat 0 2 train
  echo "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed)." >&2
  exit 137
fi
beat 0 3 done
)SH");
  ASSERT_TRUE(s.status.ok()) << s.status.message();
  const std::vector<json> failures = events("failure");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0]["reason"], "signal");
  EXPECT_EQ(failures[0]["rank"], 1);
  EXPECT_EQ(failures[0]["signal"], 9);
  EXPECT_EQ(failures[0]["message"], "rank 1 exited on signal 9 (Killed) on node vm");
}

TEST_F(SupervisorTest, TrainerErrorAfterProgressIsRestarted) {
  LaunchSummary s = run(R"SH(
if [ "$attempt" = 1 ]; then
  beat 0 1 train
  echo "error: rank 1 of 2: all_reduce of 1024 floats timed out after 1000 ms" >&2
  exit 1
fi
beat 0 2 done
)SH");
  ASSERT_TRUE(s.status.ok()) << s.status.message();
  EXPECT_EQ(s.restarts, 1);
  const json f = events("failure").at(0);
  EXPECT_EQ(f["reason"], "exit");
  EXPECT_EQ(f["exit_code"], 1);
  EXPECT_EQ(f["rank"], 1);
  EXPECT_EQ(f["message"], "rank 1 of 2: all_reduce of 1024 floats timed out after 1000 ms");
}

TEST_F(SupervisorTest, BadFlagOnTheFirstAttemptEndsTheJobWithItsError) {
  options_.max_restarts = 5;
  LaunchSummary s = run(R"SH(
echo "error: --bogus: unknown flag" >&2
exit 1
)SH");
  ASSERT_FALSE(s.status.ok());
  EXPECT_EQ(s.outcome, "failed");
  EXPECT_EQ(s.attempts, 1);
  EXPECT_EQ(s.restarts, 0);
  EXPECT_NE(s.status.message().find("--bogus: unknown flag"), std::string::npos) << s.status.message();
  EXPECT_NE(s.status.message().find("before completing a step"), std::string::npos) << s.status.message();
  EXPECT_EQ(events("failure").at(0)["action"], "give_up");
  EXPECT_EQ(events("summary").at(0)["outcome"], "failed");
  EXPECT_EQ(events("summary").at(0)["exit_code"], 1);
}

TEST_F(SupervisorTest, SameCrashTwiceBeforeAnyStepEndsTheJob) {
  options_.max_restarts = 10;
  LaunchSummary s = run("beat 0 0 setup; kill -9 $$\n");
  ASSERT_FALSE(s.status.ok());
  EXPECT_EQ(s.attempts, 2);
  EXPECT_EQ(s.restarts, 1);
  EXPECT_NE(s.status.message().find("attempts 1 and 2 failed the same way"), std::string::npos) << s.status.message();
}

TEST_F(SupervisorTest, DifferentCrashesBeforeAnyStepUseTheRestartBudgetWithCappedBackoff) {
  options_.max_restarts = 3;
  options_.backoff_s = 0.02;
  options_.backoff_max_s = 0.05;
  LaunchSummary s = run(R"SH(
if [ $((attempt % 2)) = 1 ]; then kill -9 $$; else kill -15 $$; fi
)SH");
  ASSERT_FALSE(s.status.ok());
  EXPECT_EQ(s.attempts, 4);
  EXPECT_EQ(s.restarts, 3);
  EXPECT_NE(s.status.message().find("restart limit reached"), std::string::npos) << s.status.message();
  const std::vector<json> failures = events("failure");
  ASSERT_EQ(failures.size(), 4u);
  EXPECT_EQ(failures[0]["signal"], 9);
  EXPECT_EQ(failures[1]["signal"], 15);
  EXPECT_DOUBLE_EQ(failures[0]["backoff_s"].get<double>(), 0.02);
  EXPECT_DOUBLE_EQ(failures[1]["backoff_s"].get<double>(), 0.04);
  EXPECT_DOUBLE_EQ(failures[2]["backoff_s"].get<double>(), 0.05);  // capped
  EXPECT_EQ(failures[3]["action"], "give_up");
}

TEST_F(SupervisorTest, ProgressResetsTheBackoff) {
  options_.backoff_s = 0.02;
  options_.backoff_max_s = 1;
  LaunchSummary s = run(R"SH(
[ "$attempt" = 3 ] && exit 0
beat 0 $attempt train
kill -9 $$
)SH");
  ASSERT_TRUE(s.status.ok()) << s.status.message();
  const std::vector<json> failures = events("failure");
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_DOUBLE_EQ(failures[0]["backoff_s"].get<double>(), 0.02);
  EXPECT_DOUBLE_EQ(failures[1]["backoff_s"].get<double>(), 0.02);
}

TEST_F(SupervisorTest, ARestartWithNoCheckpointStartsOverWithTheStartOverFlag) {
  // The first attempt dies before its first checkpoint; the second starts
  // over (replacing what the first left) and the third, after a checkpoint,
  // resumes.
  make_template(4);
  LaunchSummary s = run(R"SH(
echo "attempt $attempt: $*" >> "$RUN/arguments"
[ "$attempt" = 1 ] && { metric 1 0.5; kill -9 $$; }
[ "$attempt" = 2 ] && { metric 1 0.5; checkpoint step_00000004; kill -9 $$; }
exit 0
)SH");
  ASSERT_TRUE(s.status.ok()) << s.status.message();
  EXPECT_EQ(testing::read_text(run_ + "/arguments"), "attempt 1: \nattempt 2: --overwrite\nattempt 3: --resume\n");
}

TEST_F(SupervisorTest, HungRankIsDetectedKilledEvenIfItIgnoresSigtermAndRestarted) {
  options_.hang_timeout_s = 1;
  options_.kill_grace_s = 0.3;
  LaunchSummary s = run(R"SH(
if [ "$attempt" = 1 ]; then
  trap '' TERM
  beat 0 1 train
  sleep 30 &
  echo $! > "$RUN/sleeper"
  wait
fi
beat 0 2 done
)SH");
  ASSERT_TRUE(s.status.ok()) << s.status.message();
  EXPECT_EQ(s.restarts, 1);
  const json f = events("failure").at(0);
  EXPECT_EQ(f["reason"], "hang");
  EXPECT_EQ(f["rank"], 0);
  EXPECT_EQ(f["step_reached"], 1);
  EXPECT_DOUBLE_EQ(f["hang_timeout_s"].get<double>(), 1.0);
  EXPECT_NE(f["message"].get<std::string>().find("last heartbeat at step 1, phase train"), std::string::npos) << f;
  EXPECT_TRUE(process_gone(std::stoi(testing::read_text(run_ + "/sleeper")))) << "the hung job's child survived";
}

TEST_F(SupervisorTest, RankThatNeverBeatsIsHung) {
  options_.ranks = 2;
  options_.hang_timeout_s = 1;
  options_.max_restarts = 0;
  LaunchSummary s = run(R"SH(
i=0
while true; do i=$((i + 1)); beat 0 $i train; sleep 0.1; done
)SH");
  ASSERT_FALSE(s.status.ok());
  EXPECT_NE(s.status.message().find("restart limit reached"), std::string::npos) << s.status.message();
  const json f = events("failure").at(0);
  EXPECT_EQ(f["reason"], "hang");
  EXPECT_EQ(f["rank"], 1);
  EXPECT_NE(f["message"].get<std::string>().find("never sent a heartbeat"), std::string::npos) << f;
  EXPECT_GE(f["step_reached"].get<int64_t>(), 1);  // rank 0 kept beating
}

TEST_F(SupervisorTest, JobThatDoesNotExitAfterEveryRankIsDoneIsHung) {
  options_.hang_timeout_s = 1;
  options_.max_restarts = 0;
  LaunchSummary s = run("beat 0 5 done; sleep 30\n");
  ASSERT_FALSE(s.status.ok());
  const json f = events("failure").at(0);
  EXPECT_EQ(f["reason"], "hang");
  EXPECT_TRUE(f["rank"].is_null());
  EXPECT_NE(f["message"].get<std::string>().find("every rank reported done"), std::string::npos) << f;
}

TEST_F(SupervisorTest, ProcessesThatEscapeTheProcessGroupAreKilled) {
  options_.max_restarts = 0;
  LaunchSummary s = run(R"SH(
beat 0 1 train
setsid sleep 30 &
echo $! > "$RUN/escaped"
sleep 0.1
exit 3
)SH");
  ASSERT_FALSE(s.status.ok());
  EXPECT_TRUE(process_gone(std::stoi(testing::read_text(run_ + "/escaped"))));
  EXPECT_EQ(events("failure").at(0)["exit_code"], 3);
}

TEST_F(SupervisorTest, StopRequestEndsTheJobAndTheLaunch) {
  std::atomic<bool> stop{false};
  options_.stop_requested = &stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  LaunchSummary s = run("beat 0 1 train; sleep 30\n");
  stopper.join();
  EXPECT_FALSE(s.status.ok());
  EXPECT_EQ(s.outcome, "interrupted");
  EXPECT_EQ(s.attempts, 1);
  EXPECT_EQ(events("interrupted").size(), 1u);
  EXPECT_EQ(events("summary").at(0)["outcome"], "interrupted");
}

TEST_F(SupervisorTest, MissingProgramIsReportedWithoutRetrying) {
  options_.command = {"/nonexistent/supercluster-mpirun"};
  LaunchSummary s = Supervisor(options_).run();
  ASSERT_FALSE(s.status.ok());
  EXPECT_EQ(s.attempts, 1);
  EXPECT_NE(s.status.message().find("/nonexistent/supercluster-mpirun"), std::string::npos) << s.status.message();
}

}  // namespace
}  // namespace sc
