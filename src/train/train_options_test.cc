#include "train/train_options.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

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
  EXPECT_EQ(bad.status().message(), "--lr must be a number in (0, 10] (got \"fast\")");
}

// A committed checkpoint of a run whose options are `options`.
void write_run_checkpoint(const std::string& run_dir, int64_t step, const TrainOptions& options) {
  TrainerState state{.step = step,
                     .tokens_seen = static_cast<double>(step * options.global_batch * options.seq_len),
                     .options = options.to_json(),
                     .data_cursor = nlohmann::json::object()};
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

// Issue 15, item 10: non-finite and out-of-range flags were accepted
// (--lr inf trained and saved "lr": null, so the run could never resume).
TEST(TrainOptions, EveryNumberIsFiniteAndInItsRange) {
  NewRun run;
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  auto refused = [&](const char* key, nlohmann::json value) {
    nlohmann::json flags = run.flags;
    flags[key] = value;
    auto resolved = resolve_run(flags, false);
    EXPECT_FALSE(resolved.ok()) << key << " " << value;
    return resolved.ok() ? std::string() : resolved.status().message();
  };
  EXPECT_EQ(refused("lr", inf), "--lr must be a number in (0, 10] (got inf)");
  EXPECT_EQ(refused("min_lr", nan), "--min-lr must be a number in [0, 10] (got nan)");
  EXPECT_EQ(refused("weight_decay", nan), "--weight-decay must be a number in [0, 10] (got nan)");
  EXPECT_EQ(refused("beta1", nan), "--beta1 must be a number in [0, 1) (got nan)");
  EXPECT_EQ(refused("beta2", 1.0), "--beta2 must be a number in [0, 1) (got 1)");
  EXPECT_EQ(refused("grad_clip", nan), "--grad-clip must be a number in [0, 1000000000] (got nan)");
  EXPECT_EQ(refused("spike_factor", nan), "--spike-factor must be 0 (off) or a number in (1, 1000000] (got nan)");
  EXPECT_EQ(refused("time_limit_min", nan), "--time-limit must be a number in [0, 100000000] (got nan)");
  EXPECT_EQ(refused("bucket_mb", inf), "--bucket-mb must be a number in [0.001, 100000] (got inf)");
  EXPECT_EQ(refused("threads", 5000), "--threads must be an integer in [0, 256] (got 5000)");
  EXPECT_EQ(refused("seq_len", int64_t{9223372036854775807}),
            "--seq-len must be an integer in [1, 16777216] (got 9223372036854775807)");
  EXPECT_EQ(refused("steps", 0), "--steps must be an integer in [1, 1000000000000] (got 0)");
  EXPECT_EQ(refused("keep_checkpoints", int64_t{1} << 40),
            "--keep-checkpoints must be an integer in [0, 1000000] (got 1099511627776)");
  EXPECT_EQ(refused("seed", -1), "--seed must be an integer in [0, 18446744073709551615] (got -1)");

  // The relations, once each number is in range.
  TrainOptions o;
  o.data_dir = o.out_dir = "x";
  EXPECT_TRUE(o.validate().ok());
  o.min_lr = 0.5;
  EXPECT_EQ(o.validate().message(), "--min-lr 0.5 must be in [0, --lr 0.001]");
  o = TrainOptions{};
  o.batch_size = 65536;
  o.seq_len = 1024;
  EXPECT_EQ(o.validate_numbers().message(),
            "--batch-size 65536 x --seq-len 1024 is 67108864 tokens per micro-batch, more than the 16777216 supported");
  o = TrainOptions{};
  o.spike_factor = 0.5;
  EXPECT_EQ(o.validate_numbers().message(), "--spike-factor must be 0 (off) or a number in (1, 1000000] (got 0.5)");
}

TEST(TrainOptions, OutOfRangeValuesInTheConfigOrACheckpointNameTheirFile) {
  NewRun run;
  nlohmann::json config = ModelConfig::preset("llama-mini")->to_json();
  config["training"] = {{"lr", 1e300}};
  testing::write_text(run.dir.file("config.json"), config.dump());
  auto resolved = resolve_run(run.flags, false);
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().message(), run.dir.file("config.json") +
                                             " 'training': training option 'lr' must be a number in (0, 10] (got "
                                             "number 1e+300)");
  config["training"] = {{"batch_size", 0}};  // parsed back, 0 is an unsigned JSON number
  testing::write_text(run.dir.file("config.json"), config.dump());
  resolved = resolve_run(run.flags, false);
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().message(), run.dir.file("config.json") +
                                             " 'training': training option 'batch_size' must be an integer in [1, "
                                             "65536] (got number 0)");

  // A checkpoint an older build wrote after --lr inf: "lr": null.
  testing::TempDir dir;
  TrainOptions saved;
  saved.data_dir = dir.file("data");
  saved.out_dir = dir.file("run");
  saved.global_batch = 8;
  write_run_checkpoint(saved.out_dir, 10, saved);
  const std::string state_path = saved.out_dir + "/checkpoints/step_00000010/trainer_state.json";
  nlohmann::json state = nlohmann::json::parse(testing::read_text(state_path));
  state["options"]["lr"] = nullptr;
  ASSERT_TRUE(testing::write_checkpoint(saved.out_dir + "/checkpoints", 11, [&](const std::string& d) -> Status {
    SC_RETURN_IF_ERROR(write_file_atomic(d + "/trainer_state.json", state.dump()));
    return write_file_atomic(d + "/config.json", ModelConfig::preset("llama-mini")->to_json().dump());
  }).ok());
  auto resumed = resolve_run({{"out_dir", saved.out_dir}}, true);
  ASSERT_FALSE(resumed.ok());
  EXPECT_EQ(resumed.status().message(), saved.out_dir + "/checkpoints/step_00000011/trainer_state.json: training "
                                                        "option 'lr' must be a number in (0, 10] (got null)");
}

// Issue 15, item 13: a checkpoint past the run's last step was resumed.
TEST(TrainOptions, AResumedStepPastTheRunsStepsIsRefused) {
  testing::TempDir dir;
  TrainOptions saved;
  saved.data_dir = dir.file("data");
  saved.out_dir = dir.file("run");
  saved.global_batch = 8;
  saved.steps = 20;
  write_run_checkpoint(saved.out_dir, 10, saved);
  EXPECT_TRUE(resolve_run({{"out_dir", saved.out_dir}}, true).ok());
  auto past = resolve_run({{"out_dir", saved.out_dir}, {"steps", 5}}, true);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.status().message(),
            "--resume: " + saved.out_dir + "/checkpoints/step_00000010 is at step 10, past the run's --steps 5");
}

}  // namespace
}  // namespace sc
