#include "train/checkpointer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "core/file_util.h"
#include "dist/single_process.h"
#include "run/checkpoint_store.h"
#include "test_util.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

constexpr CollectiveTimeout kTimeout{std::chrono::seconds(10)};

ModelConfig tiny_config() {
  auto config = ModelConfig::from_json({{"vocab_size", 37}, {"hidden_size", 16}, {"num_hidden_layers", 2},
                                        {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"head_dim", 4},
                                        {"intermediate_size", 24}, {"max_position_embeddings", 8}},
                                       "tiny");
  EXPECT_TRUE(config.ok()) << config.status().message();
  return *config;
}

// A model and a one-rank optimizer with recognizable state.
struct Training {
  explicit Training(uint64_t seed) : pool(1) {
    model = std::move(Model::create(config, 1, 4, pool)).value();
    model->init_weights(seed);
    const size_t n = model->num_floats();
    m.resize(n);
    v.resize(n);
    for (size_t i = 0; i < n; ++i) m[i] = 1e-3f * static_cast<float>(i % 97) + static_cast<float>(seed);
    for (size_t i = 0; i < n; ++i) v[i] = 1e-4f * static_cast<float>(i % 89);
    adamw = std::make_unique<AdamW>(AdamWConfig{}, decay_ranges(model->layout()),
                                    std::vector<OwnedSegment>{{0, n, 0}}, m.data(), v.data(), n);
  }
  CheckpointSource source(int64_t step) {
    return {.model = *model, .adamw = *adamw, .config = config, .tokenizer_model = "",
            .state = {.step = step, .options = {{"global_batch", 1}}, .data_cursor = nlohmann::json::object()}};
  }
  ModelConfig config = tiny_config();
  ThreadPool pool;
  std::unique_ptr<Model> model;
  std::vector<float> m, v;
  std::unique_ptr<AdamW> adamw;
};

CheckpointPart wait_for_writer(Checkpointer& checkpointer) {
  for (int i = 0; i < 2000; ++i) {
    const CheckpointPart part = checkpointer.poll();
    if (part != CheckpointPart::kBusy) return part;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return CheckpointPart::kBusy;
}

TEST(Checkpointer, WritesStagedStateInTheBackgroundAndCommitsAfterTheExchange) {
  testing::TempDir dir;
  const RunPaths run(dir.path());
  ASSERT_TRUE(ensure_writable_directory(run.root()).ok());
  SingleProcessCommunicator comm;
  FaultInjector faults;
  const EventLog events(run.events(), "trainer");
  Checkpointer checkpointer(run, comm, 0, faults, events, kTimeout);
  Training live(1);
  const std::vector<float> params(live.model->params(), live.model->params() + live.model->num_floats());
  const std::vector<float> m = live.m;
  CheckpointSource source = live.source(5);
  std::string tokenizer = "the tokenizer.model bytes the loader checked";
  source.tokenizer_model = tokenizer;
  ASSERT_TRUE(checkpointer.start(5, source).ok());
  tokenizer.assign(tokenizer.size(), 'x');  // the caller's copy may change: the staged one is written
  // The step loop goes on at once: the checkpoint holds what was staged.
  std::fill(live.model->params(), live.model->params() + live.model->num_floats(), 0.0f);
  std::fill(live.m.begin(), live.m.end(), 0.0f);
  ASSERT_EQ(wait_for_writer(checkpointer), CheckpointPart::kWritten);
  EXPECT_FALSE(fs::exists(run.checkpoints() + "/step_00000005"));  // written, not committed
  StepStats exchanged;  // every rank reports its part written
  ASSERT_TRUE(checkpointer.after_exchange(exchanged).ok());
  EXPECT_EQ(checkpointer.last_committed(), run.checkpoints() + "/step_00000005");
  EXPECT_TRUE(verify_checkpoint(checkpointer.last_committed()).ok());
  EXPECT_EQ(testing::read_text(checkpointer.last_committed() + "/tokenizer.model"),
            "the tokenizer.model bytes the loader checked");
  EXPECT_TRUE(checkpointer.take_commit_s().has_value());
  EXPECT_FALSE(checkpointer.take_commit_s().has_value());  // reported once
  ASSERT_EQ(read_events(run.events()).size(), 1u);
  EXPECT_EQ(read_events(run.events())[0]["event"], "checkpoint");

  Training loaded(2);
  ASSERT_TRUE(load_model_and_optimizer(checkpointer.last_committed(), *loaded.model, *loaded.adamw).ok());
  EXPECT_EQ(std::vector<float>(loaded.model->params(), loaded.model->params() + loaded.model->num_floats()), params);
  EXPECT_EQ(loaded.m, m);
  auto state = TrainerState::load(checkpointer.last_committed());
  ASSERT_TRUE(state.ok()) << state.status().message();
  EXPECT_EQ(state->step, 5);
}

TEST(Checkpointer, ARankThatCannotWriteItsPartStopsEveryoneWithoutACommit) {
  testing::TempDir dir;
  const RunPaths run(dir.path());
  SingleProcessCommunicator comm;
  FaultInjector faults;
  Checkpointer checkpointer(run, comm, 0, faults, EventLog(), kTimeout);
  Training live(1);
  // A directory where the optimizer shard's file must go: its rename fails.
  fs::create_directories(run.checkpoints() + "/.step_00000007.tmp/optimizer-00000-of-00001.safetensors");
  ASSERT_TRUE(checkpointer.start(7, live.source(7)).ok());
  ASSERT_EQ(wait_for_writer(checkpointer), CheckpointPart::kFailed);
  StepStats exchanged;
  exchanged.checkpoint_files_written = false;
  exchanged.checkpoint_failed_rank = 0;
  Status status = checkpointer.after_exchange(exchanged);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("rank 0: writing checkpoint step_00000007"), std::string::npos) << status.message();
  EXPECT_FALSE(fs::exists(run.checkpoints() + "/step_00000007"));
  EXPECT_TRUE(checkpointer.last_committed().empty());
}

TEST(Checkpointer, FlushWaitsForTheWriterAndCommitsAndAStartFlushesTheOneInFlight) {
  testing::TempDir dir;
  const RunPaths run(dir.path());
  SingleProcessCommunicator comm;
  FaultInjector faults;
  Checkpointer checkpointer(run, comm, 1, faults, EventLog(), kTimeout);
  Training live(3);
  ASSERT_TRUE(checkpointer.start(1, live.source(1)).ok());
  ASSERT_TRUE(checkpointer.start(2, live.source(2)).ok());  // commits step 1 first
  EXPECT_TRUE(fs::exists(run.checkpoints() + "/step_00000001"));
  ASSERT_TRUE(checkpointer.flush().ok());
  EXPECT_EQ(checkpointer.last_committed(), run.checkpoints() + "/step_00000002");
  EXPECT_FALSE(fs::exists(run.checkpoints() + "/step_00000001"));  // keep_last 1
  EXPECT_EQ(testing::read_text(run.checkpoints() + "/latest"), "step_00000002\n");
  EXPECT_TRUE(checkpointer.flush().ok());  // nothing in flight: nothing to do
}

}  // namespace
}  // namespace sc
