// `mpirun -np N supercluster train`: data parallelism with a ZeRO-1 sharded
// optimizer, against single-process runs of the same global batch.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "train_cli_fixture.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

// 4 layers of width 64: about 174k parameters, so the gradient buffer is
// several buckets on every rank count (the tiny model fits in one) and the
// reduce-scatters really start while backward still runs.
constexpr const char* kSmallConfig = R"({
  "model_type": "grok-1", "vocab_size": 400, "hidden_size": 64, "num_hidden_layers": 4,
  "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 128,
  "max_position_embeddings": 64, "hidden_act": "gelu_pytorch_tanh", "tie_word_embeddings": true,
  "sandwich_norm": true, "attn_logit_softcapping": 30.0, "embedding_multiplier_scale": 8.0,
  "output_multiplier_scale": 0.25,
  "training": {"seq_len": 32, "lr": 0.003, "eval_every": 5, "eval_batches": 2, "checkpoint_every": 5}
})";

class DataParallelCli : public TrainCli {
 protected:
  static void SetUpTestSuite() {
    TrainCli::SetUpTestSuite();
    testing::write_text(dir_->file("small.json"), kSmallConfig);
  }
  // A run of the small model with a global batch of 4 sequences of batch 1,
  // one thread per rank: 1 rank accumulates 4 micro-batches, 2 ranks 2, 4
  // ranks 1. Buckets of 0.1 MB: the smallest the shard granule allows.
  static testing::CommandResult try_ranks(int ranks, const std::string& out, const std::string& extra,
                                          const std::string& env = "") {
    const std::string args = fmt::format("train --config {} --data {} --out {} --batch-size 1 --global-batch 4 "
                                         "--threads 1 --bucket-mb 0.1 {}",
                                         dir_->file("small.json"), dir_->file("data"), dir_->file(out), extra);
    return ranks == 1 ? testing::run_command(fmt::format("{} {} {}", env, SUPERCLUSTER_BINARY, args))
                      : run_mpi(ranks, args, 120, env);
  }
  static std::string train_ranks(int ranks, const std::string& out, const std::string& extra,
                                 const std::string& env = "") {
    auto r = try_ranks(ranks, out, extra, env);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }
  static std::vector<nlohmann::json> metrics(const std::string& run) {
    std::ifstream in(dir_->file(run + "/metrics.jsonl"));
    std::vector<nlohmann::json> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }
  // Loss, gradient norm and validation loss are the same doubles at every step.
  static void expect_same_curve(const std::string& a, const std::string& b, size_t steps) {
    const auto ma = metrics(a), mb = metrics(b);
    ASSERT_EQ(ma.size(), steps) << a;
    ASSERT_EQ(mb.size(), steps) << b;
    for (size_t i = 0; i < steps; ++i) {
      EXPECT_EQ(ma[i]["loss"], mb[i]["loss"]) << a << " vs " << b << " at step " << i + 1;
      EXPECT_EQ(ma[i]["grad_norm"], mb[i]["grad_norm"]) << a << " vs " << b << " at step " << i + 1;
      EXPECT_EQ(ma[i].value("val_loss", -1.0), mb[i].value("val_loss", -1.0)) << a << " vs " << b << " at step " << i + 1;
    }
  }
};

TEST_F(DataParallelCli, OneTwoAndFourRanksGiveBitIdenticalTraining) {
  train_ranks(1, "dp1", "--steps 20");
  const std::string two = train_ranks(2, "dp2", "--steps 20");
  const std::string four = train_ranks(4, "dp4", "--steps 20");
  EXPECT_NE(two.find("data parallel: 2 ranks (mpi (deterministic)), 6 gradient buckets"), std::string::npos) << two;
  EXPECT_NE(four.find("3 gradient buckets"), std::string::npos) << four;
  EXPECT_NE(four.find("(1/4 shard, ZeRO-1)"), std::string::npos) << four;
  size_t summaries = 0;
  for (size_t at = four.find("trained to step"); at != std::string::npos; at = four.find("trained to step", at + 1)) {
    ++summaries;
  }
  EXPECT_EQ(summaries, 1u) << "only rank 0 reports:\n" << four;
  expect_same_curve("dp1", "dp2", 20);
  expect_same_curve("dp1", "dp4", 20);
  expect_identical_tensors(dir_->file("dp1/checkpoints/step_00000020/model.safetensors"),
                           dir_->file("dp4/checkpoints/step_00000020/model.safetensors"));
  // Each rank wrote its optimizer shard; together they are the whole state.
  for (int r = 0; r < 4; ++r) {
    EXPECT_TRUE(fs::exists(dir_->file(fmt::format("dp4/checkpoints/step_00000020/optimizer-{:05d}-of-00004.safetensors", r))));
  }
  const auto manifest = nlohmann::json::parse(testing::read_text(dir_->file("dp4/checkpoints/step_00000020/manifest.json")));
  EXPECT_TRUE(manifest["files"].contains("optimizer-00003-of-00004.safetensors")) << manifest.dump();
}

TEST_F(DataParallelCli, CheckpointOfFourRanksResumesOnTwoAndOne) {
  train_ranks(2, "straight2", "--steps 16");
  train_ranks(4, "saved4", "--steps 16 --stop-at-step 10 --checkpoint-every 10");
  fs::copy(dir_->file("saved4"), dir_->file("saved4_to_1"), fs::copy_options::recursive);
  auto resumed = run_mpi(2, fmt::format("train --resume --out {}", dir_->file("saved4")));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("written on 4 ranks, resharded to 2"), std::string::npos) << resumed.output;
  expect_same_curve("straight2", "saved4", 16);
  expect_identical_tensors(dir_->file("straight2/checkpoints/step_00000016/model.safetensors"),
                           dir_->file("saved4/checkpoints/step_00000016/model.safetensors"));

  auto one = testing::run_supercluster(fmt::format("train --resume --out {}", dir_->file("saved4_to_1")));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  expect_same_curve("straight2", "saved4_to_1", 16);
  expect_identical_tensors(dir_->file("saved4/checkpoints/step_00000016/optimizer-00000-of-00002.safetensors"),
                           dir_->file("straight2/checkpoints/step_00000016/optimizer-00000-of-00002.safetensors"));
}

TEST_F(DataParallelCli, SkippedStepsAndRollbacksAreTheSameOnTwoRanksAsOnOne) {
  // Rank 1's loss turns NaN twice at step 5: two bad steps in a row roll
  // back, on both ranks together, to the checkpoint of step 4 (written in
  // the background a moment before, so usually committed by the rollback's
  // own flush: every rank must then load the checkpoint rank 0 committed).
  // The 1-rank run with the same faults takes the same decisions, so both
  // end on the same bits.
  const std::string flags = "--steps 12 --max-bad-steps 2 --checkpoint-every 2";
  const std::string two = train_ranks(2, "guard2", flags, "SUPERCLUSTER_FAULTS=nan:rank=1:step=5,nan:rank=1:step=5");
  train_ranks(1, "guard1", flags, "SUPERCLUSTER_FAULTS=nan:step=5,nan:step=5");
  EXPECT_NE(two.find("rolled back to"), std::string::npos) << two;
  EXPECT_NE(two.find("(step 4)"), std::string::npos) << two;
  expect_same_curve("guard1", "guard2", 12);
  expect_identical_tensors(dir_->file("guard1/checkpoints/step_00000012/model.safetensors"),
                           dir_->file("guard2/checkpoints/step_00000012/model.safetensors"));
}

TEST_F(DataParallelCli, AnExplicitGradAccumMustAgreeWithTheGlobalBatch) {
  auto r = run_mpi(2, fmt::format("train --config {} --data {} --out {} --batch-size 1 --global-batch 4 "
                                  "--grad-accum 1 --steps 2",
                                  dir_->file("small.json"), dir_->file("data"), dir_->file("conflict")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--grad-accum 1 conflicts with the global batch of 4 sequences"), std::string::npos)
      << r.output;
  auto odd = testing::run_supercluster(fmt::format("train --config {} --data {} --out {} --batch-size 3 "
                                                   "--global-batch 4 --steps 2",
                                                   dir_->file("small.json"), dir_->file("data"), dir_->file("odd")));
  EXPECT_NE(odd.exit_code, 0);
  EXPECT_NE(odd.output.find("--global-batch 4 is not a multiple of --batch-size 3"), std::string::npos) << odd.output;
}

TEST_F(DataParallelCli, ARankThatFailsEndsTheJobWithItsMessage) {
  // Both ranks fail the same way here (a vocab mismatch); the job must exit
  // non-zero with a rank-tagged message instead of hanging.
  auto r = testing::run_command(fmt::format(
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 mpirun --oversubscribe --mca btl self,vader -np 2 "
      "{} train --config grok-mini --data {} --out {} --steps 2",
      SUPERCLUSTER_BINARY, dir_->file("data"), dir_->file("failing")));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "the job hung:\n" << r.output;
  EXPECT_NE(r.output.find("vocab size 400, expected 8192"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("of 2:"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sc
