// `supercluster launch` on real mpirun jobs of the tiny model, with faults
// injected through SUPERCLUSTER_FAULTS: kills at random steps, a hung rank, a
// crash while a checkpoint is written, and a command that can never start.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "train_cli_fixture.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

class LaunchCli : public TrainCli {
 protected:
  // launch -np 2 on this machine's shared memory; the train arguments of the
  // tiny model, 24 steps, a checkpoint every 4.
  static testing::CommandResult launch(const std::string& faults, const std::string& out,
                                       const std::string& launch_flags, const std::string& train_extra = "") {
    return testing::run_command(fmt::format(
        "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 SUPERCLUSTER_FAULTS='{}' timeout 300 {} launch -np 2 "
        "--backoff 0.2 --kill-grace 1 --mpirun-arg --oversubscribe --mpirun-arg --mca --mpirun-arg btl "
        "--mpirun-arg self,vader {} -- train --config {} --data {} --out {} --steps 24 --batch-size 2 "
        "--checkpoint-every 4 --threads 1 {}",
        faults, SUPERCLUSTER_BINARY, launch_flags, dir_->file("tiny.json"), dir_->file("data"), dir_->file(out),
        train_extra));
  }
  static std::vector<nlohmann::json> events(const std::string& run, const std::string& kind) {
    std::ifstream in(dir_->file(run + "/events.jsonl"));
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);) {
      auto e = nlohmann::json::parse(line);
      if (e.value("event", "") == kind) out.push_back(e);
    }
    return out;
  }
  static void expect_same_final_state(const std::string& a, const std::string& b) {
    for (const char* f : {"model.safetensors", "optimizer-00000-of-00002.safetensors",
                          "optimizer-00001-of-00002.safetensors"}) {
      expect_identical_tensors(dir_->file(a + "/checkpoints/step_00000024/" + f),
                               dir_->file(b + "/checkpoints/step_00000024/" + f));
    }
  }
  static void SetUpTestSuite() {
    TrainCli::SetUpTestSuite();
    auto r = launch("", "uninterrupted", "");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_NE(r.output.find("launch: success after 1 attempt (0 restarts)"), std::string::npos) << r.output;
  }
};

TEST_F(LaunchCli, KilledRanksAtRandomStepsStillEndBitIdentical) {
  // Three kills at distinct random steps of 2..23, on random ranks; printed
  // so a failure can be reproduced.
  std::mt19937 rng(std::random_device{}());
  std::set<int> steps;
  while (steps.size() < 3) steps.insert(std::uniform_int_distribution<int>(2, 23)(rng));
  std::string faults;
  for (int step : steps) {
    faults += fmt::format("{}kill:rank={}:step={}", faults.empty() ? "" : ",",
                          std::uniform_int_distribution<int>(0, 1)(rng), step);
  }
  SCOPED_TRACE("SUPERCLUSTER_FAULTS=" + faults);
  auto r = launch(faults, "killed", "--max-restarts 5 --hang-timeout 60");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("launch: success after 4 attempts (3 restarts): step 24"), std::string::npos) << r.output;
  const auto failures = events("killed", "failure");
  ASSERT_EQ(failures.size(), 3u);
  for (const auto& f : failures) {
    EXPECT_EQ(f["reason"], "signal") << f.dump();
    EXPECT_EQ(f["signal"], 9) << f.dump();
    EXPECT_EQ(f["action"], "restart") << f.dump();
  }
  const auto summary = events("killed", "summary");
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0]["outcome"], "success");
  EXPECT_GT(summary[0]["goodput"].get<double>(), 0.0);
  EXPECT_LT(summary[0]["goodput"].get<double>(), 1.0);
  expect_same_final_state("uninterrupted", "killed");
}

TEST_F(LaunchCli, AHungRankIsDetectedAndTheJobRestarts) {
  auto r = launch("hang:rank=1:step=11", "hung", "--hang-timeout 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto failures = events("hung", "failure");
  ASSERT_EQ(failures.size(), 1u) << r.output;
  EXPECT_EQ(failures[0]["reason"], "hang");
  EXPECT_EQ(failures[0]["rank"], 1) << "rank 0 waits in the collective; the hung rank is 1";
  EXPECT_EQ(failures[0]["step_reached"], 10);
  // Checkpoint 8 is committed at the first step after its files are written
  // (asynchronous); 4 surely is.
  EXPECT_GE(failures[0]["restart_from"].get<int>(), 4);
  EXPECT_NE(r.output.find("rank 1 made no progress for more than 3 s"), std::string::npos) << r.output;
  expect_same_final_state("uninterrupted", "hung");
}

TEST_F(LaunchCli, ACrashWhileWritingACheckpointRestartsFromThePreviousOne) {
  auto r = launch("checkpoint_crash:rank=0:step=12", "torn", "--hang-timeout 60");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto failures = events("torn", "failure");
  ASSERT_EQ(failures.size(), 1u) << r.output;
  EXPECT_EQ(failures[0]["restart_from"], 8) << "the torn checkpoint of step 12 is not used";
  expect_same_final_state("uninterrupted", "torn");
}

TEST_F(LaunchCli, AJobKilledBeforeItsFirstCheckpointStartsOverInPlace) {
  // The trainer refuses a directory holding another run's output; the
  // launcher's restart replaces what its own first attempt left.
  auto r = launch("kill:rank=1:step=3", "early", "--hang-timeout 60");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto attempts = events("early", "attempt");
  ASSERT_EQ(attempts.size(), 2u) << r.output;
  EXPECT_EQ(attempts[1]["resumed_from"], 0);
  EXPECT_EQ(attempts[1]["command"].back(), "--overwrite");
  EXPECT_EQ(events("early", "failure").size(), 1u);  // the history survives the overwrite
  EXPECT_EQ(events("early", "overwrite").size(), 1u);
  expect_same_final_state("uninterrupted", "early");
}

TEST_F(LaunchCli, ACommandThatFailsAtOnceIsNotRestarted) {
  // Flags that parse, a value only the model can refuse: every rank fails
  // in setup, and so would every restart.
  auto r = launch("", "fails_at_once", "--max-restarts 5", "--seq-len 100");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--seq-len 100 exceeds"), std::string::npos) << r.output;
  EXPECT_EQ(events("fails_at_once", "attempt").size(), 1u) << r.output;
  const auto summary = events("fails_at_once", "summary");
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0]["outcome"], "failed");
  EXPECT_EQ(summary[0]["restarts"], 0);
}

TEST_F(LaunchCli, ABadTrainFlagIsRefusedBeforeAnyRankStarts) {
  auto r = launch("", "bad_flag", "--max-restarts 5", "--no-such-flag");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error: launch: The following argument was not expected: --no-such-flag"), std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir_->file("bad_flag"))) << "mpirun was started:\n" << r.output;
}

TEST_F(LaunchCli, MissingRankCountIsAClearError) {
  // Nothing before `--`: the launcher's own message, not the flag parser's.
  auto r = testing::run_supercluster("launch -- train --out " + dir_->file("no_np"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("error: launch: -np N (the number of ranks) is required"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sc
