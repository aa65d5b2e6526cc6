#include "train/trainer_state.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace sc {
namespace {

TrainerState example_state() {
  return {.step = 12,
          .tokens_seen = 24576,
          .elapsed_s = 3.5,
          .world_size = 2,
          .options = {{"global_batch", 8}, {"seq_len", 256}},
          .seed = 18446744073709551615ull,
          .data_cursor = {{"epoch", 0}, {"position", 96}},
          .loss_guard = {{"recent", {7.5, 7.25}}}};
}

TEST(TrainerState, WrittenStateLoadsBack) {
  testing::TempDir dir;
  testing::write_text(dir.file("trainer_state.json"), example_state().to_json().dump(2));
  auto loaded = TrainerState::load(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->to_json(), example_state().to_json());
  EXPECT_EQ(loaded->seed, 18446744073709551615ull);
}

TEST(TrainerState, TheFormatBeforeShardingAndBadFieldsAreRefusedByName) {
  testing::TempDir dir;
  const std::string path = dir.file("trainer_state.json");
  auto expect_refused = [&](nlohmann::json j, const std::string& expected) {
    testing::write_text(path, j.dump());
    auto loaded = TrainerState::load(dir.path());
    ASSERT_FALSE(loaded.ok()) << j.dump();
    EXPECT_NE(loaded.status().message().find(path), std::string::npos) << loaded.status().message();
    EXPECT_NE(loaded.status().message().find(expected), std::string::npos) << loaded.status().message();
  };
  nlohmann::json old = example_state().to_json();
  old.erase("world_size");
  expect_refused(old, "before optimizer state was sharded");
  old = example_state().to_json();
  old["options"].erase("global_batch");
  expect_refused(old, "before optimizer state was sharded");
  nlohmann::json bad = example_state().to_json();
  bad["step"] = -1;
  expect_refused(bad, "'step' must be a non-negative integer");
  bad = example_state().to_json();
  bad["world_size"] = "two";
  expect_refused(bad, "'world_size' must be a positive integer");
  bad = example_state().to_json();
  bad["rng"] = {{"kind", "mt19937"}};
  expect_refused(bad, "'rng' must be");
  bad = example_state().to_json();
  bad.erase("data_cursor");
  expect_refused(bad, "no 'data_cursor'");
  expect_refused(nlohmann::json::array(), "not a JSON object");
}

// Issue 15, item 13: a step of 1e15 was accepted and the resumed run
// reported -6.5e21 tokens/s; a step of 2^64 - 5 read as -5.
TEST(TrainerState, StepTokensAndTimeMustBeInRangeAndAgree) {
  testing::TempDir dir;
  const std::string path = dir.file("trainer_state.json");
  auto refused = [&](const nlohmann::json& j) {
    testing::write_text(path, j.dump());
    auto loaded = TrainerState::load(dir.path());
    EXPECT_FALSE(loaded.ok()) << j.dump();
    return loaded.ok() ? std::string() : loaded.status().message();
  };
  nlohmann::json bad = example_state().to_json();
  bad["step"] = 1000000000000000;
  EXPECT_EQ(refused(bad), path + ": 'step' must be a non-negative integer, at most 10^12");
  bad["step"] = 18446744073709551611ull;
  EXPECT_EQ(refused(bad), path + ": 'step' must be a non-negative integer, at most 10^12");
  bad = example_state().to_json();
  bad["tokens_seen"] = 0;
  EXPECT_EQ(refused(bad), path + ": 'tokens_seen' is 0, not 'step' x global_batch x seq_len = 24576");
  bad = example_state().to_json();
  bad["step"] = 13;
  EXPECT_NE(refused(bad).find("'tokens_seen' is 24576, not 'step' x global_batch x seq_len = 26624"),
            std::string::npos);
  const size_t depth = 100000;
  testing::write_text(path, "{\"loss_guard\": {\"x\": " + std::string(depth, '[') + std::string(depth, ']') + "}}");
  auto nested = TrainerState::load(dir.path());
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.status().message(), path + ": JSON nested more than 64 levels deep (at byte 83)");
  bad = example_state().to_json();
  bad["elapsed_s"] = -1;
  EXPECT_EQ(refused(bad), path + ": 'elapsed_s' must be a number of seconds in [0, 1e12]");
  bad["elapsed_s"] = 1e300;
  EXPECT_EQ(refused(bad), path + ": 'elapsed_s' must be a number of seconds in [0, 1e12]");
}

}  // namespace
}  // namespace sc
