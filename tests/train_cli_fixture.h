// The fixture of the `supercluster train` end-to-end tests: a tiny Grok-style
// model and a prepared multilingual corpus, shared by every test of a suite.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "model/safetensors.h"
#include "test_util.h"

namespace sc {

inline constexpr const char* kTinyConfig = R"({
  "model_type": "grok-1", "vocab_size": 400, "hidden_size": 32, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "intermediate_size": 64,
  "max_position_embeddings": 64, "hidden_act": "gelu_pytorch_tanh", "tie_word_embeddings": true,
  "sandwich_norm": true, "attn_logit_softcapping": 30.0, "embedding_multiplier_scale": 78.38367176906169,
  "output_multiplier_scale": 0.5773502691896257,
  "training": {"batch_size": 4, "seq_len": 32, "lr": 0.003, "eval_every": 5, "eval_batches": 2,
               "checkpoint_every": 5, "threads": 2}
})";

class TrainCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    testing::write_text(dir_->file("corpus.txt"), [] {
      std::string fortunes, text = testing::multilingual_text(30);
      for (size_t pos = 0; pos < text.size();) {
        size_t end = text.find('\n', pos);
        fortunes += text.substr(pos, end - pos) + "\n%\n";
        pos = end + 1;
      }
      return fortunes;
    }());
    testing::write_text(dir_->file("tiny.json"), kTinyConfig);
    auto r = testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400 --val-fraction 0.2",
                                                   dir_->file("corpus.txt"), dir_->file("data")));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string train(const std::string& out, const std::string& extra) {
    auto r = testing::run_supercluster(fmt::format("train --config {} --data {} --out {} {}", dir_->file("tiny.json"),
                                                   dir_->file("data"), dir_->file(out), extra));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }
  static testing::TempDir* dir_;
};
inline testing::TempDir* TrainCli::dir_ = nullptr;

inline void expect_identical_tensors(const std::string& a_path, const std::string& b_path) {
  auto a = SafetensorsFile::open(a_path);
  auto b = SafetensorsFile::open(b_path);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (const TensorView& t : a->tensors()) {
    const TensorView* u = b->find(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    ASSERT_EQ(t.size_bytes, u->size_bytes) << t.name;
    EXPECT_EQ(std::memcmp(t.data, u->data, t.size_bytes), 0) << t.name << " differs";
  }
}

// `supercluster ARGS` under real mpirun with `ranks` processes on this one
// machine (shared memory, more ranks than cores allowed).
// `env` (VAR=value ...) is set for every rank.
inline testing::CommandResult run_mpi(int ranks, const std::string& args, int timeout_s = 120,
                                      const std::string& env = "") {
  return testing::run_command(fmt::format(
      "{} OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout {} mpirun --oversubscribe --mca btl "
      "self,vader -np {} {} {}",
      env, timeout_s, ranks, SUPERCLUSTER_BINARY, args));
}

}  // namespace sc
