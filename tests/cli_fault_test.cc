// The trainer's own fault handling, on real processes: the loss guard (an
// injected NaN is skipped; repeated ones roll back), a crash in the middle of
// a checkpoint write, and damaged checkpoint files. The supervised restarts
// of `supercluster launch` are in cli_launch_test.cc.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "train_cli_fixture.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

class FaultCli : public TrainCli {
 protected:
  static testing::CommandResult train_with_faults(const std::string& faults, const std::string& out,
                                                  const std::string& extra) {
    return testing::run_command(fmt::format("SUPERCLUSTER_FAULTS='{}' {} train --config {} --data {} --out {} {}",
                                            faults, SUPERCLUSTER_BINARY, dir_->file("tiny.json"), dir_->file("data"),
                                            dir_->file(out), extra),
                                /*internal_error_expected=*/faults.find("throw") != std::string::npos);
  }
  static std::vector<nlohmann::json> events(const std::string& run) {
    std::ifstream in(dir_->file(run + "/events.jsonl"));
    std::vector<nlohmann::json> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }
  static size_t count_events(const std::string& run, const std::string& kind) {
    size_t n = 0;
    for (const auto& e : events(run)) n += e.value("event", "") == kind;
    return n;
  }
};

TEST_F(FaultCli, AnInjectedNanIsSkippedAndTheRunGoesOn) {
  auto r = train_with_faults("nan:step=4", "nan_once", "--steps 12");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("fault injection"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("step 4: non-finite loss (nan, gradient norm"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("update skipped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("trained to step 12"), std::string::npos) << r.output;
  EXPECT_EQ(count_events("nan_once", "skipped_step"), 1u);
  // Every step of metrics.jsonl was applied: 12 lines, none NaN.
  std::ifstream metrics(dir_->file("nan_once/metrics.jsonl"));
  size_t lines = 0;
  for (std::string line; std::getline(metrics, line); ++lines) {
    EXPECT_TRUE(std::isfinite(nlohmann::json::parse(line)["loss"].get<double>())) << line;
  }
  EXPECT_EQ(lines, 12u);
}

TEST_F(FaultCli, AnEscapedExceptionIsOneLineAndExitOneNotAnAbort) {
  // Before main() had a last-resort handler, anything thrown past a command
  // ended in std::terminate: "terminate called ...", SIGABRT, rc 134.
  auto r = train_with_faults("throw:step=2", "throws", "--steps 4");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error: train: internal error: exception injected on rank 0 at step 2\n"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
}

TEST_F(FaultCli, RepeatedBadStepsRollBackToTheLastCheckpoint) {
  // Three NaNs in a row at step 8 (each fault fires once; the step is redone
  // with the next batch each time): the third rolls back to step 5.
  auto r = train_with_faults("nan:step=8,nan:step=8,nan:step=8", "rollback", "--steps 12");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("rolled back to"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(step 5)"), std::string::npos) << r.output;
  EXPECT_EQ(count_events("rollback", "skipped_step"), 2u);
  ASSERT_EQ(count_events("rollback", "rollback"), 1u);
  for (const auto& e : events("rollback")) {
    if (e["event"] == "rollback") EXPECT_EQ(e["to_step"], 5);
  }
  EXPECT_NE(r.output.find("trained to step 12"), std::string::npos) << r.output;
  // The metrics of the abandoned steps 6 and 7 were replaced by the redone ones.
  std::ifstream metrics(dir_->file("rollback/metrics.jsonl"));
  int64_t expected_step = 1;
  for (std::string line; std::getline(metrics, line); ++expected_step) {
    EXPECT_EQ(nlohmann::json::parse(line)["step"], expected_step);
  }
  EXPECT_EQ(expected_step, 13);
}

TEST_F(FaultCli, NoCheckpointToRollBackToIsAnError) {
  auto r = train_with_faults("nan:step=2,nan:step=2,nan:step=2", "no_rollback", "--steps 12");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("3 bad steps in a row and no checkpoint to roll back to"), std::string::npos) << r.output;
}

TEST_F(FaultCli, ACrashWhileWritingACheckpointKeepsThePreviousOne) {
  auto crashed = train_with_faults("checkpoint_crash:step=10", "torn", "--steps 15");
  EXPECT_NE(crashed.exit_code, 0) << crashed.output;
  EXPECT_TRUE(fs::exists(dir_->file("torn/checkpoints/.step_00000010.tmp"))) << "killed mid-write";
  EXPECT_FALSE(fs::exists(dir_->file("torn/checkpoints/step_00000010")));
  // The same faults again: the crash already fired, so the resumed run
  // finishes, from step 5, and ends where a run that never crashed ends.
  auto resumed = train_with_faults("checkpoint_crash:step=10", "torn", "--resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + dir_->file("torn/checkpoints/step_00000005")), std::string::npos)
      << resumed.output;
  EXPECT_FALSE(fs::exists(dir_->file("torn/checkpoints/.step_00000010.tmp"))) << "the torn directory was cleaned up";
  train_with_faults("", "untorn", "--steps 15");
  expect_identical_tensors(dir_->file("untorn/checkpoints/step_00000015/model.safetensors"),
                           dir_->file("torn/checkpoints/step_00000015/model.safetensors"));
}

TEST_F(FaultCli, EveryKindOfDamageToTheNewestCheckpointIsDetectedAndSkipped) {
  auto r = train_with_faults("", "damaged", "--steps 10");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string newest = dir_->file("damaged/checkpoints/step_00000010");
  const std::string base = dir_->file("damaged_base");
  fs::copy(dir_->file("damaged"), base, fs::copy_options::recursive);
  struct Damage {
    std::string file, how, expected;
  };
  const std::vector<Damage> damages = {
      {"model.safetensors", "flip", "checksum mismatch"},
      {"optimizer-00000-of-00001.safetensors", "truncate", "bytes, manifest says"},
      {"trainer_state.json", "delete", "listed in the manifest but missing"},
      {"manifest.json", "delete", "no manifest"},
      {"manifest.json", "truncate", "manifest.json: not valid JSON"},
      {"config.json", "flip", "checksum mismatch"},
  };
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.file + " " + d.how);
    fs::remove_all(dir_->file("damaged"));
    fs::copy(base, dir_->file("damaged"), fs::copy_options::recursive);
    const std::string path = newest + "/" + d.file;
    if (d.how == "delete") {
      fs::remove(path);
    } else if (d.how == "truncate") {
      fs::resize_file(path, fs::file_size(path) / 2);
    } else {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(fs::file_size(path) / 2));
      const char c = static_cast<char>(f.get());
      f.seekp(static_cast<std::streamoff>(fs::file_size(path) / 2));
      f.put(static_cast<char>(c ^ 0x10));
    }
    auto resumed = testing::run_supercluster(fmt::format("train --resume --out {} --steps 11", dir_->file("damaged")));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_NE(resumed.output.find("skipping checkpoint"), std::string::npos) << resumed.output;
    EXPECT_NE(resumed.output.find(d.expected), std::string::npos) << resumed.output;
    EXPECT_NE(resumed.output.find("resumed from " + dir_->file("damaged/checkpoints/step_00000005")),
              std::string::npos)
        << resumed.output;
  }
}

}  // namespace
}  // namespace sc
