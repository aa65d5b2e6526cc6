// Issue 15's numbers from flags and files, as a user meets them: each bad
// value is one line naming the flag, file or field and its range, exit 1,
// before anything is allocated, started, printed or written.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "checkpoint_test_util.h"
#include "model/counts.h"
#include "model/weights_io.h"
#include "test_util.h"
#include "train_cli_fixture.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

// The binary under `timeout`, so that a regression that starts 5,000
// threads or allocates without end fails instead of hanging the suite.
testing::CommandResult run(const std::string& args) {
  return testing::run_command(fmt::format("timeout 120 {} {}", SUPERCLUSTER_BINARY, args));
}

void expect_error(const testing::CommandResult& r, const std::string& expected) {
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error: " + expected), std::string::npos) << "expected '" << expected << "' in:\n"
                                                                    << r.output;
}

// Item 1: `train --config x.json --dry-run` segfaulted on a value nested
// 100,000 deep (the error message dumped it).
TEST(InputNumbersCli, DeeplyNestedConfigIsAnErrorNotACrash) {
  testing::TempDir dir;
  const size_t depth = 100000;
  testing::write_text(dir.file("x.json"),
                      "{\"model_type\": " + std::string(depth, '[') + std::string(depth, ']') + "}");
  expect_error(run(fmt::format("train --config {} --dry-run", dir.file("x.json"))),
               dir.file("x.json") + ": JSON nested more than 64 levels deep");
}

// Item 2: a context of 2^62 trained and exited 0; generate then wrapped
// L·T·KD and wrote out of bounds. Now the config is refused by name.
TEST(InputNumbersCli, SizesPastTheirBoundsAreRefusedBeforeTraining) {
  testing::TempDir dir;
  nlohmann::json config = nlohmann::json::parse(kTinyConfig);
  config["max_position_embeddings"] = 4611686018427387904;
  testing::write_text(dir.file("huge.json"), config.dump());
  const std::string expected = dir.file("huge.json") +
                               ": 'max_position_embeddings' must be an integer in [1, 16777216] (got number "
                               "4611686018427387904)";
  expect_error(run(fmt::format("train --config {} --dry-run", dir.file("huge.json"))), expected);
  expect_error(run(fmt::format("train --config {} --data {} --out {} --steps 1", dir.file("huge.json"),
                               dir.file("data"), dir.file("run"))),
               expected);
  EXPECT_FALSE(fs::exists(dir.file("run")));
}

// Item 14 (last part): --seq-len 99999999999999999999 was clamped to
// INT64_MAX and the dry run printed "activations -1.45 MiB".
TEST(InputNumbersCli, TrainDryRunRefusesSizesItCannotHold) {
  auto r = run("train --config grok-mini --dry-run --seq-len 99999999999999999999");
  expect_error(r, "--seq-len must be an integer in [1, 16777216] (got 99999999999999999999)");
  EXPECT_EQ(r.output.find("activations"), std::string::npos) << r.output;
  expect_error(run("train --config grok-mini --dry-run --seq-len 9223372036854775807"),
               "--seq-len must be an integer in [1, 16777216] (got 9223372036854775807)");
  expect_error(run("train --config grok-mini --dry-run --seq-len 4096"),
               "--seq-len 4096 exceeds the model's max_position_embeddings");
  expect_error(run("train --config grok-mini --dry-run --seq-len 1024 --batch-size 65536"),
               "--batch-size 65536 x --seq-len 1024 is 67108864 tokens per micro-batch, more than the 16777216 "
               "supported");
  expect_error(run("train --config grok-mini --dry-run --seq-len 010"),
               "--seq-len must be an integer in [1, 16777216] (got 010)");
  auto fine = run("train --config grok-mini --dry-run --seq-len 256 --batch-size 8");
  EXPECT_EQ(fine.exit_code, 0) << fine.output;
  EXPECT_NE(fine.output.find("activations"), std::string::npos) << fine.output;
}

// Item 10: non-finite flags were accepted; `--lr inf --stop-at-step 1`
// trained, exited 0 and saved "lr": null, so the run could never resume.
TEST(InputNumbersCli, NonFiniteTrainFlagsAreRefusedBeforeAnythingIsWritten) {
  testing::TempDir dir;
  testing::write_text(dir.file("tiny.json"), kTinyConfig);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--lr inf --stop-at-step 1", "--lr must be a number in (0, 10] (got inf)"},
      {"--min-lr nan", "--min-lr must be a number in [0, 10] (got nan)"},
      {"--weight-decay nan", "--weight-decay must be a number in [0, 10] (got nan)"},
      {"--beta1 nan", "--beta1 must be a number in [0, 1) (got nan)"},
      {"--grad-clip nan", "--grad-clip must be a number in [0, 1000000000] (got nan)"},
      {"--spike-factor nan", "--spike-factor must be 0 (off) or a number in (1, 1000000] (got nan)"},
      {"--time-limit nan", "--time-limit must be a number in [0, 100000000] (got nan)"},
      {"--bucket-mb inf", "--bucket-mb must be a number in [0.001, 100000] (got inf)"},
      {"--lr 1e999", "--lr must be a number in (0, 10] (got inf)"},
      {"--seed -1", "--seed must be an integer in [0, 18446744073709551615] (got -1)"},
  };
  for (const auto& [flags, expected] : cases) {
    SCOPED_TRACE(flags);
    expect_error(run(fmt::format("train --config {} --data {} --out {} --steps 5 {}", dir.file("tiny.json"),
                                 dir.file("data"), dir.file("run"), flags)),
                 expected);
    EXPECT_FALSE(fs::exists(dir.file("run")));
  }
}

// Item 6: --threads 100000000 and generate --threads -1 (a size_t flag)
// aborted from std::system_error; --threads 5000 started 5,000 threads.
TEST(InputNumbersCli, ThreadsFlagsAreBounded) {
  testing::TempDir dir;
  testing::write_text(dir.file("corpus.txt"), testing::multilingual_text(2));
  for (const char* threads : {"100000000", "5000", "257", "-1"}) {
    SCOPED_TRACE(threads);
    expect_error(run(fmt::format("train --config grok-mini --data {} --out {} --threads {}", dir.file("data"),
                                 dir.file("run"), threads)),
                 "--threads must be an integer in [0, 256]");
    expect_error(run(fmt::format("generate --checkpoint {} --prompt hi --threads {}", dir.file("run"), threads)),
                 "--threads must be an integer in [0, 256]");
    expect_error(run(fmt::format("prepare --input {} --out {} --vocab-size 300 --threads {}", dir.file("corpus.txt"),
                                 dir.file("data"), threads)),
                 "--threads must be an integer in [0, 256]");
  }
  EXPECT_FALSE(fs::exists(dir.file("data")));
  EXPECT_FALSE(fs::exists(dir.file("run")));
  expect_error(run(fmt::format("generate --checkpoint {} --prompt hi --threads 18446744073709551615", dir.file("run"))),
               "--threads must be an integer in [0, 256] (got 18446744073709551615)");
  expect_error(run(fmt::format("prepare --input {} --out {} --seed -1", dir.file("corpus.txt"), dir.file("data"))),
               "--seed must be an integer in [0, 18446744073709551615] (got -1)");
}

// Item 10: `generate --temperature nan` printed "~~~~~" with exit 0,
// --top-p nan and --top-k -5 were ignored. Sampling flags are checked before
// the checkpoint is even looked at, and nothing of the prompt is printed.
TEST(InputNumbersCli, GenerateSamplingFlagsAreCheckedBeforeAnythingIsPrinted) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--temperature nan", "--temperature must be 0 (greedy) or a number in [0.001, 100] (got nan)"},
      {"--temperature inf", "--temperature must be 0 (greedy) or a number in [0.001, 100] (got inf)"},
      {"--temperature 1e-30", "--temperature must be 0 (greedy) or a number in [0.001, 100] (got 1e-30)"},
      {"--top-p nan", "--top-p must be a number in (0, 1] (got nan)"},
      {"--top-k -5", "--top-k must be an integer in [0, 16777216] (0: off) (got -5)"},
      {"--max-tokens -1", "--max-tokens must be an integer in [0, 16777216] (got -1)"},
      {"--max-tokens 99999999999999999999", "--max-tokens must be an integer in [0, 16777216] (got 99999999999999999999)"},
      {"--seed -1", "--seed must be an integer in [0, 18446744073709551615] (got -1)"},
      {"--weights fp16", "--weights must be fp32, bf16 or int8 (got 'fp16')"},
  };
  for (const auto& [flags, expected] : cases) {
    SCOPED_TRACE(flags);
    auto r = run(fmt::format("generate --checkpoint /nonexistent --prompt PROMPT_TEXT {}", flags));
    expect_error(r, expected);
    EXPECT_EQ(r.output.find("PROMPT_TEXT"), std::string::npos) << r.output;
  }
}

// Checks that need a trained run: its tokenizer and a checkpoint.
class InputNumbersTrainCli : public TrainCli {};

// Item 10: the 100,000-character prompt was echoed before it was rejected.
// Item 2: a model whose KV cache the machine cannot hold is a clear error
// naming it and its size, not an out-of-memory kill.
TEST_F(InputNumbersTrainCli, GenerateRefusesWhatItCannotHoldBeforePrinting) {
  train("run", "--steps 2");
  const std::string prompt(100000, 'x');
  auto r = run(fmt::format("generate --checkpoint {} --prompt {}", dir_->file("run"), prompt));
  expect_error(r, "the prompt is ");
  EXPECT_NE(r.output.find("the model's context is 64"), std::string::npos) << r.output.substr(0, 2000);
  EXPECT_LT(r.output.size(), 2000u) << "the prompt was echoed";

  // A checkpoint of a model whose every size is in range but whose full
  // context needs terabytes of KV cache: 64 layers x 2^24 positions x 1024
  // floats of keys and values.
  nlohmann::json config = nlohmann::json::parse(kTinyConfig);
  config.erase("training");
  config.update({{"num_hidden_layers", 64}, {"num_attention_heads", 512}, {"num_key_value_heads", 512},
                 {"head_dim", 2}, {"max_position_embeddings", int64_t{1} << 24}});
  auto model_config = ModelConfig::from_json(config, "long context");
  ASSERT_TRUE(model_config.ok()) << model_config.status().message();
  const std::vector<TensorSpec> layout = parameter_layout(*model_config);
  std::vector<float> weights(static_cast<size_t>(parameter_buffer_floats(layout)), 0.01f);
  const std::string checkpoints = dir_->file("long/checkpoints");
  ASSERT_TRUE(testing::write_checkpoint(checkpoints, 1, [&](const std::string& d) -> Status {
    SC_RETURN_IF_ERROR(write_file_atomic(d + "/config.json", config.dump()));
    fs::copy_file(dir_->file("data/tokenizer.model"), d + "/tokenizer.model");
    return save_weights(d + "/model.safetensors", layout, weights.data());
  }).ok());
  r = run(fmt::format("generate --checkpoint {} --prompt hello", dir_->file("long")));
  expect_error(r, checkpoints + "/step_00000001: KV cache of 1 slot x 16777216 positions: needs 8796.09 GB of "
                                "memory (8796093022208 bytes), more than this machine's");
  EXPECT_EQ(r.output.find("hello"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sc
