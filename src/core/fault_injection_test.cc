#include "core/fault_injection.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "test_util.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

TEST(FaultSpecs, ParsesEveryKindWithAndWithoutRank) {
  auto specs = parse_fault_specs("kill:rank=1:step=5, hang:rank=0:step=8,nan:step=3,checkpoint_crash:step=10");
  ASSERT_TRUE(specs.ok()) << specs.status().message();
  ASSERT_EQ(specs->size(), 4u);
  const FaultSpec& kill = (*specs)[0];
  EXPECT_EQ(kill.index, 0);
  EXPECT_EQ(kill.kind, FaultKind::kKill);
  EXPECT_EQ(kill.rank, 1);
  EXPECT_EQ(kill.step, 5);
  EXPECT_EQ((*specs)[1].kind, FaultKind::kHang);
  EXPECT_EQ((*specs)[1].rank, 0);
  EXPECT_EQ((*specs)[2].kind, FaultKind::kNan);
  EXPECT_FALSE((*specs)[2].rank.has_value());
  EXPECT_EQ((*specs)[3].kind, FaultKind::kCheckpointCrash);
  EXPECT_EQ((*specs)[3].index, 3);
  EXPECT_EQ((*specs)[3].step, 10);
  // Key order is free.
  auto swapped = parse_fault_specs("kill:step=2:rank=3");
  ASSERT_TRUE(swapped.ok());
  EXPECT_EQ((*swapped)[0].rank, 3);
  EXPECT_EQ((*swapped)[0].step, 2);
}

TEST(FaultSpecs, BlankTextIsNoFaults) {
  for (const char* text : {"", "  "}) {
    auto specs = parse_fault_specs(text);
    ASSERT_TRUE(specs.ok());
    EXPECT_TRUE(specs->empty());
  }
}

TEST(FaultSpecs, BadEntriesNameTheVariableTheEntryAndTheSyntax) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& c : {Case{"explode:step=1", "unknown fault kind 'explode'"}, Case{"kill:rank=1", "step is missing"},
                        Case{"kill:step=0", "step must be an integer >= 1, got '0'"}, Case{"kill:step=5x", "got '5x'"},
                        Case{"kill:rank=-1:step=2", "rank must be a non-negative integer, got '-1'"},
                        Case{"hang:rank=one:step=2", "got 'one'"}, Case{"nan:step=2:when=now", "unknown key 'when'"},
                        Case{"nan:step=2:step=3", "step given twice"}, Case{"nan:3", "'3' is not key=value"},
                        Case{"nan:step=3,,kill:step=4", "entry 2 of"}, Case{"nan:step=3,", "is empty"}}) {
    auto specs = parse_fault_specs(c.text);
    ASSERT_FALSE(specs.ok()) << c.text;
    const std::string& message = specs.status().message();
    EXPECT_EQ(specs.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(message.find("SUPERCLUSTER_FAULTS"), std::string::npos) << message;
    EXPECT_NE(message.find(c.says), std::string::npos) << message;
    EXPECT_NE(message.find("expected KIND[:rank=R]:step=S"), std::string::npos) << message;
  }
  auto bad = parse_fault_specs("kill:step=1,hang:rank=x:step=2");
  EXPECT_NE(bad.status().message().find("entry 'hang:rank=x:step=2'"), std::string::npos) << bad.status().message();
}

TEST(FaultInjector, FromEnvReadsTheVariableAndKeepsThisRanksFaults) {
  testing::TempDir dir;
  ::setenv("SUPERCLUSTER_FAULTS", "kill:rank=1:step=5,nan:step=3,hang:rank=0:step=8", 1);
  auto rank1 = FaultInjector::from_env(dir.path(), 1);
  ::setenv("SUPERCLUSTER_FAULTS", "kill:step=", 1);
  auto bad = FaultInjector::from_env(dir.path(), 1);
  ::unsetenv("SUPERCLUSTER_FAULTS");
  auto none = FaultInjector::from_env(dir.path(), 1);
  ASSERT_TRUE(rank1.ok() && none.ok());
  ASSERT_EQ(rank1->faults().size(), 2u);
  EXPECT_EQ(rank1->faults()[0].kind, FaultKind::kKill);
  EXPECT_EQ(rank1->faults()[1].kind, FaultKind::kNan);
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(bad.ok());
  // Nothing due at other steps: returns, fires nothing, writes no marker.
  rank1->at_step_start(4);
  rank1->at_step_start(6);
  rank1->in_checkpoint_write(5);
  EXPECT_FALSE(fs::exists(dir.file("faults")));
}

TEST(FaultInjector, NanFiresOncePerRunDirectoryAcrossProcessesAndPerRank) {
  testing::TempDir dir;
  const std::string spec = "nan:step=3";
  auto first = FaultInjector::from_spec(spec, dir.path(), 0);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->poison_now(2));
  EXPECT_TRUE(first->poison_now(3));
  EXPECT_FALSE(first->poison_now(3));
  EXPECT_TRUE(fs::exists(dir.file("faults/0-nan-rank0-step3.fired")));
  // A restarted process of the same run: the marker makes it inert.
  auto restarted = FaultInjector::from_spec(spec, dir.path(), 0);
  EXPECT_FALSE(restarted->poison_now(3));
  // Without a rank the fault applies to every rank, each once.
  auto rank1 = FaultInjector::from_spec(spec, dir.path(), 1);
  EXPECT_TRUE(rank1->poison_now(3));
  EXPECT_TRUE(fs::exists(dir.file("faults/0-nan-rank1-step3.fired")));
  // Another run directory starts fresh.
  testing::TempDir other;
  auto other_run = FaultInjector::from_spec(spec, other.path(), 0);
  EXPECT_TRUE(other_run->poison_now(3));
}

TEST(FaultInjector, FaultThatCannotRecordItsMarkerDoesNotFire) {
  testing::TempDir dir;
  testing::write_text(dir.file("not_a_dir"), "x");
  auto injector = FaultInjector::from_spec("nan:step=1", dir.file("not_a_dir"), 0);
  ASSERT_TRUE(injector.ok());
  EXPECT_FALSE(injector->poison_now(1));
}

// Runs `body` in a forked child and returns its wait status.
template <class Body>
int run_in_child(Body body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

TEST(FaultInjector, KillFiresInTheFirstProcessOnlyAndLeavesItsMarker) {
  testing::TempDir dir;
  const std::string spec = "kill:rank=1:step=5";
  auto at_step_5 = [&] { FaultInjector::from_spec(spec, dir.path(), 1)->at_step_start(5); };
  int status = run_in_child(at_step_5);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_TRUE(fs::exists(dir.file("faults/0-kill-rank1-step5.fired")));
  status = run_in_child(at_step_5);  // the restarted rank replays step 5
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // Rank 0 is not named by the fault.
  status = run_in_child([&] { FaultInjector::from_spec(spec, dir.path(), 0)->at_step_start(5); });
  EXPECT_TRUE(WIFEXITED(status));
}

TEST(FaultInjector, CheckpointCrashKillsOnlyDuringThatCheckpoint) {
  testing::TempDir dir;
  const std::string spec = "checkpoint_crash:step=10";
  int status = run_in_child([&] {
    auto injector = FaultInjector::from_spec(spec, dir.path(), 0);
    injector->at_step_start(10);       // not a step fault
    injector->in_checkpoint_write(5);  // another checkpoint
    injector->in_checkpoint_write(10);
  });
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  status = run_in_child([&] { FaultInjector::from_spec(spec, dir.path(), 0)->in_checkpoint_write(10); });
  EXPECT_TRUE(WIFEXITED(status));
}

TEST(FaultInjector, HangNeverReturns) {
  testing::TempDir dir;
  const pid_t pid = ::fork();
  if (pid == 0) {
    FaultInjector::from_spec("hang:step=8", dir.path(), 0)->at_step_start(8);
    ::_exit(0);  // reached only if the hang returned
  }
  // The marker appears when the fault fires; after that the child must still
  // be running (it never exits on its own).
  for (int i = 0; i < 500 && !fs::exists(dir.file("faults/0-hang-rank0-step8.fired")); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), 0) << "the hung child exited";
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(fs::exists(dir.file("faults/0-hang-rank0-step8.fired")));
}

}  // namespace
}  // namespace sc
