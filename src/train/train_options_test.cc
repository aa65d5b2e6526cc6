#include "train/train_options.h"

#include <gtest/gtest.h>

#include "checkpoint_test_util.h"
#include "core/file_util.h"
#include "test_util.h"

namespace sc {
namespace {

// A config.json with a "training" object, and the flags of a new run.
struct NewRun {
  NewRun() {
    nlohmann::json config = ModelConfig::preset("llama-mini")->to_json();
    config["training"] = {{"lr", 0.5}, {"steps", 7}, {"seq_len", 64}};
    testing::write_text(dir.file("config.json"), config.dump());
    flags = {{"config", dir.file("config.json")}, {"data_dir", dir.file("data")}, {"out_dir", dir.file("run")},
             {"lr", 0.25}};
  }
  testing::TempDir dir;
  nlohmann::json flags;
};

TEST(TrainOptions, DefaultsThenTheConfigsTrainingObjectThenFlags) {
  NewRun run;
  auto resolved = resolve_run(run.flags, false);
  ASSERT_TRUE(resolved.ok()) << resolved.status().message();
  EXPECT_EQ(resolved->options.lr, 0.25);      // flag over config
  EXPECT_EQ(resolved->options.steps, 7);      // config over default
  EXPECT_EQ(resolved->options.seq_len, 64);
  EXPECT_EQ(resolved->options.batch_size, 8);  // default
  EXPECT_FALSE(resolved->checkpoint);
  run.flags["lr"] = "fast";
  auto bad = resolve_run(run.flags, false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("command line: training option 'lr' must be a number"), std::string::npos)
      << bad.status().message();
}

// A committed checkpoint of a run whose options are `options`.
void write_run_checkpoint(const std::string& run_dir, int64_t step, const TrainOptions& options) {
  TrainerState state{.step = step, .options = options.to_json(), .data_cursor = nlohmann::json::object()};
  Status s = testing::write_checkpoint(run_dir + "/checkpoints", step, [&](const std::string& dir) -> Status {
    SC_RETURN_IF_ERROR(write_file_atomic(dir + "/trainer_state.json", state.to_json().dump()));
    return write_file_atomic(dir + "/config.json", ModelConfig::preset("llama-mini")->to_json().dump());
  });
  ASSERT_TRUE(s.ok()) << s.message();
}

TEST(TrainOptions, AResumedRunTakesTheCheckpointsOptionsAndKeepsWhatMustNotChange) {
  testing::TempDir dir;
  TrainOptions saved;
  saved.data_dir = dir.file("data");
  saved.out_dir = dir.file("run");
  saved.seq_len = 128;
  saved.global_batch = 16;
  saved.stop_at_step = 10;
  saved.lr = 0.125;
  write_run_checkpoint(saved.out_dir, 10, saved);
  // A new run into that directory is refused; --resume continues it.
  EXPECT_NE(check_new_run_directory(saved).message().find("already holds a run (checkpoint step_00000010)"),
            std::string::npos) << check_new_run_directory(saved).message();
  auto resumed = resolve_run({{"out_dir", saved.out_dir}, {"steps", 2000}}, true);
  ASSERT_TRUE(resumed.ok()) << resumed.status().message();
  EXPECT_EQ(resumed->checkpoint->step, 10);
  EXPECT_EQ(resumed->state->step, 10);
  EXPECT_EQ(resumed->options.lr, 0.125);     // the run's
  EXPECT_EQ(resumed->options.steps, 2000);   // may change
  EXPECT_EQ(resumed->options.stop_at_step, 0);  // an early stop is not inherited
  auto changed = resolve_run({{"out_dir", saved.out_dir}, {"seq_len", 256}}, true);
  ASSERT_FALSE(changed.ok());
  EXPECT_NE(changed.status().message().find("'seq_len' is 128 in the checkpoint and 256 on the command line"),
            std::string::npos) << changed.status().message();
  auto nowhere = resolve_run({{"out_dir", dir.file("none")}}, true);
  ASSERT_FALSE(nowhere.ok());
  EXPECT_NE(nowhere.status().message().find("--resume"), std::string::npos) << nowhere.status().message();
  EXPECT_FALSE(resolve_run(nlohmann::json::object(), true).ok());  // --resume without --out
}

TEST(TrainOptions, AnExplicitGradAccumMustAgreeWithTheGlobalBatch) {
  TrainOptions o;
  o.batch_size = 2;
  o.global_batch = 16;
  o.grad_accum = 4;
  EXPECT_TRUE(check_grad_accum_flag(o, {{"grad_accum", 4}}, false, 2).ok());
  Status s = check_grad_accum_flag(o, {{"grad_accum", 4}}, false, 4);
  EXPECT_NE(s.message().find("--grad-accum 4 conflicts with the global batch of 16 sequences"), std::string::npos)
      << s.message();
  EXPECT_TRUE(check_grad_accum_flag(o, nlohmann::json::object(), false, 4).ok());  // derived, not given
}

}  // namespace
}  // namespace sc
