// `supercluster train` on data directories that do not hang together: the
// loader checks tokenizer, vocabulary, shard numbering and prepare.json as one
// (docs/shard_format.md) and refuses a mismatch naming the files.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"
#include "train_cli_fixture.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

class DataCheckCli : public ::testing::Test {
 protected:
  // Three prepared directories: "a" (vocab 400), "b" (vocab 500, same text),
  // "c" (vocab 400, other text, so another tokenizer of the same size).
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    const std::string text = testing::multilingual_text(30);
    std::string fortunes, reversed;
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find('\n', pos);
      std::string line = text.substr(pos, end - pos);
      fortunes += line + "\n%\n";
      reversed = line + " " + line.substr(0, line.find(' ', line.size() / 2)) + "\n%\n" + reversed;
      pos = end + 1;
    }
    testing::write_text(dir_->file("corpus.txt"), fortunes);
    testing::write_text(dir_->file("other.txt"), reversed);
    testing::write_text(dir_->file("tiny.json"), kTinyConfig);
    for (const auto& [name, flags] : {std::pair<const char*, const char*>{"a", "--vocab-size 400 --shard-tokens 1000"},
                                      {"b", "--vocab-size 500"}}) {
      auto r = testing::run_supercluster(fmt::format("prepare --input {} --out {} --val-fraction 0.2 {}",
                                                     dir_->file("corpus.txt"), dir_->file(name), flags));
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    auto r = testing::run_supercluster(
        fmt::format("prepare --input {} --out {} --vocab-size 400", dir_->file("other.txt"), dir_->file("c")));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_NE(testing::read_text(dir_->file("a/tokenizer.model")), testing::read_text(dir_->file("c/tokenizer.model")));
  }
  static void TearDownTestSuite() { delete dir_; }

  // A fresh copy of prepared directory `name`.
  std::string copy_of(const std::string& name) {
    const std::string copy = scratch_.file(name);
    fs::copy(dir_->file(name), copy, fs::copy_options::recursive);
    return copy;
  }
  testing::CommandResult train(const std::string& data) {
    return testing::run_supercluster(fmt::format("train --config {} --data {} --out {} --steps 1",
                                                 dir_->file("tiny.json"), data, scratch_.file("run")));
  }
  static void expect_refused(const testing::CommandResult& r, const std::vector<std::string>& expected) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("error: "), std::string::npos) << r.output;
    for (const std::string& e : expected) EXPECT_NE(r.output.find(e), std::string::npos) << "no '" << e << "' in:\n" << r.output;
  }

  static testing::TempDir* dir_;
  testing::TempDir scratch_;
};
testing::TempDir* DataCheckCli::dir_ = nullptr;

TEST_F(DataCheckCli, ConsistentDataTrains) {
  ASSERT_TRUE(fs::exists(dir_->file("a/train_0001.bin")));
  auto r = train(dir_->file("a"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testing::read_text(scratch_.file("run/checkpoints/step_00000001/tokenizer.model")),
            testing::read_text(dir_->file("a/tokenizer.model")));
}

// Issue 15, item 8: the state a `kill -9` of an older prepare left: a new
// tokenizer (here of another vocabulary) beside the old shards.
TEST_F(DataCheckCli, TokenizerOfOtherVocabularyIsRefused) {
  const std::string data = copy_of("a");
  fs::copy_file(dir_->file("b/tokenizer.model"), data + "/tokenizer.model", fs::copy_options::overwrite_existing);
  expect_refused(train(data), {"tokenizer.model", "500"});
  EXPECT_FALSE(fs::exists(scratch_.file("run/checkpoints")));
}

// The same with a tokenizer of the same size: only its checksum tells.
TEST_F(DataCheckCli, TokenizerOfSameSizeFromAnotherPrepareIsRefused) {
  const std::string data = copy_of("a");
  fs::copy_file(dir_->file("c/tokenizer.model"), data + "/tokenizer.model", fs::copy_options::overwrite_existing);
  expect_refused(train(data), {"tokenizer.model", "checksum"});
}

TEST_F(DataCheckCli, MissingTokenizerOrReportIsRefused) {
  std::string data = copy_of("a");
  fs::remove(data + "/tokenizer.model");
  expect_refused(train(data), {"tokenizer.model"});
  fs::remove_all(data);
  data = copy_of("a");
  fs::remove(data + "/prepare.json");
  expect_refused(train(data), {"prepare.json"});
}

// A prepare.json of another prepare beside these shards.
TEST_F(DataCheckCli, ReportOfOtherShardsIsRefused) {
  const std::string data = copy_of("a");
  fs::copy_file(dir_->file("c/prepare.json"), data + "/prepare.json", fs::copy_options::overwrite_existing);
  expect_refused(train(data), {"prepare.json", "another prepare"});
}

// Issue 15, item 11: a validation shard of another vocabulary stopped only
// validation, with a warning.
TEST_F(DataCheckCli, ValidationShardOfOtherVocabularyIsRefused) {
  const std::string data = copy_of("a");
  fs::copy_file(dir_->file("b/val_0000.bin"), data + "/val_0000.bin", fs::copy_options::overwrite_existing);
  expect_refused(train(data), {"val_0000.bin", "500"});
}

// Issue 15, item 11: train_0000 + train_0002 was read as one stream.
TEST_F(DataCheckCli, MissingMiddleShardIsRefused) {
  const std::string data = copy_of("a");
  ASSERT_TRUE(fs::exists(data + "/train_0002.bin"));
  fs::remove(data + "/train_0001.bin");
  expect_refused(train(data), {"train_0001.bin", "missing"});
}

// A shard no prepare.json lists (left by another prepare) is refused too.
TEST_F(DataCheckCli, UnlistedShardIsRefused) {
  const std::string data = copy_of("b");
  fs::copy_file(dir_->file("a/train_0001.bin"), data + "/train_0001.bin");
  expect_refused(train(data), {"train_0001.bin", "prepare.json"});
}

// No validation split at all stays a warning.
TEST_F(DataCheckCli, NoValidationSplitIsAWarning) {
  const std::string data = scratch_.file("noval");
  auto r = testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400 --val-fraction 0",
                                                 dir_->file("corpus.txt"), data));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = train(data);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("no validation loss"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sc
