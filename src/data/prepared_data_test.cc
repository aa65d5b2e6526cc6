#include "data/prepared_data.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/checksum.h"
#include "data/loader.h"
#include "data/prepare.h"
#include "data/shard.h"
#include "test_util.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

// Fortune-style text; `variant` 1 gives other text, so another tokenizer of the same size.
std::string corpus_text(int variant) {
  const std::string text = testing::multilingual_text(12);
  std::string out;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    std::string line = text.substr(pos, end - pos);
    out = variant == 0 ? out + line + "\n%\n" : line + " " + line.substr(0, line.find(' ', line.size() / 2)) + "\n%\n" + out;
    pos = end + 1;
  }
  return out;
}

// Rewrites a directory of this build's prepare as today's build before
// this one wrote it: shard version 1 (no tokenizer checksum), prepare.json
// format version 1.
void downgrade_to_version_1(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".bin") continue;
    std::string bytes = testing::read_text(e.path());
    ShardHeader h;
    std::memcpy(&h, bytes.data(), sizeof(h));
    h.version = 1;
    h.tokenizer_checksum = 0;
    h.header_checksum = checksum64(&h, offsetof(ShardHeader, header_checksum));
    std::memcpy(bytes.data(), &h, sizeof(h));
    testing::write_text(e.path(), bytes);
  }
  auto report = nlohmann::json::parse(testing::read_text(dir + "/prepare.json"));
  report["format_version"] = 1;
  report.erase("tokenizer_checksum");
  testing::write_text(dir + "/prepare.json", report.dump(2));
}

class PreparedDataTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    for (int variant : {0, 1}) {
      const std::string name = variant == 0 ? "a" : "c";
      testing::write_text(dir_->file(name + ".txt"), corpus_text(variant));
      PrepareOptions options{.inputs = {dir_->file(name + ".txt")},
                             .out_dir = dir_->file(name),
                             .vocab_size = 400,
                             .val_fraction = 0.1,
                             .num_threads = 1,
                             .shard_tokens = variant == 0 ? 500u : 100'000'000u};
      auto summary = run_prepare(options);
      ASSERT_TRUE(summary.ok()) << summary.status().message();
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  std::string copy_of(const std::string& name) {
    const std::string copy = scratch_.file(name);
    fs::copy(dir_->file(name), copy, fs::copy_options::recursive);
    return copy;
  }
  static std::string error_of(const std::string& dir) {
    auto data = PreparedData::check(dir);
    EXPECT_FALSE(data.ok()) << dir << " passed the check";
    return data.ok() ? "" : data.status().message();
  }

  static testing::TempDir* dir_;
  testing::TempDir scratch_;
};
testing::TempDir* PreparedDataTest::dir_ = nullptr;

TEST_F(PreparedDataTest, WhatPrepareWroteHangsTogether) {
  auto data = PreparedData::check(dir_->file("a"));
  ASSERT_TRUE(data.ok()) << data.status().message();
  EXPECT_EQ(data->format_version, kPrepareReportVersion);
  EXPECT_EQ(data->vocab_size, 400u);
  ASSERT_GE(data->train_shards.size(), 3u);
  for (size_t i = 0; i < data->train_shards.size(); ++i) {
    EXPECT_EQ(fs::path(data->train_shards[i]).filename(), shard_file_name("train", i));
  }
  EXPECT_FALSE(data->val_shards.empty());
  // Every shard records the tokenizer it was made with.
  const uint64_t tokenizer_checksum = checksum64(testing::read_text(dir_->file("a/tokenizer.model")));
  for (const std::string& path : data->train_shards) {
    auto header = read_shard_header(path);
    ASSERT_TRUE(header.ok()) << header.status().message();
    EXPECT_EQ(header->version, 2u);
    EXPECT_EQ(header->tokenizer_checksum, tokenizer_checksum);
  }
}

TEST_F(PreparedDataTest, GapsAndStrayNamesAreNamed) {
  std::string dir = copy_of("a");
  fs::remove(dir + "/train_0001.bin");
  std::string error = error_of(dir);
  EXPECT_NE(error.find("train_0001.bin is missing"), std::string::npos) << error;
  EXPECT_NE(error.find("train_0002.bin exists"), std::string::npos) << error;

  dir = copy_of("c");
  fs::copy_file(dir + "/train_0000.bin", dir + "/train_01.bin");
  error = error_of(dir);
  EXPECT_NE(error.find("train_01.bin: not a shard name"), std::string::npos) << error;
}

// The last shard gone leaves no gap; prepare.json still tells.
TEST_F(PreparedDataTest, ShardListedButMissingIsNamed) {
  const std::string dir = copy_of("a");
  auto data = PreparedData::check(dir);
  ASSERT_TRUE(data.ok());
  fs::remove(data->train_shards.back());
  const std::string error = error_of(dir);
  EXPECT_NE(error.find(fs::path(data->train_shards.back()).filename().string() + " is missing"), std::string::npos)
      << error;
  EXPECT_NE(error.find("prepare.json lists it"), std::string::npos) << error;
}

TEST_F(PreparedDataTest, ShardOfAnotherPrepareIsNamed) {
  const std::string dir = copy_of("a");
  // c's train_0000.bin has the same vocabulary, other tokens and tokenizer.
  fs::copy_file(dir_->file("c/train_0000.bin"), dir + "/train_0000.bin", fs::copy_options::overwrite_existing);
  const std::string error = error_of(dir);
  EXPECT_NE(error.find("train_0000.bin"), std::string::npos) << error;
  EXPECT_NE(error.find("prepare.json records"), std::string::npos) << error;
}

TEST_F(PreparedDataTest, ReportIsReadThroughTypedFields) {
  const std::string dir = copy_of("c");
  const std::string original = testing::read_text(dir + "/prepare.json");
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto report = nlohmann::json::parse(original);
    edit(report);
    testing::write_text(dir + "/prepare.json", report.dump());
    return error_of(dir);
  };
  std::string error = with([](nlohmann::json& r) { r["vocab_size"] = "400"; });
  EXPECT_NE(error.find("prepare.json: 'vocab_size' must be"), std::string::npos) << error;
  error = with([](nlohmann::json& r) { r["format_version"] = 3; });
  EXPECT_NE(error.find("'format_version'"), std::string::npos) << error;
  error = with([](nlohmann::json& r) { r["shards"][0]["checksum"] = "xyz"; });
  EXPECT_NE(error.find("shards[0]: 'checksum' must be 16 hexadecimal digits"), std::string::npos) << error;
  error = with([](nlohmann::json& r) { r["shards"][0]["file"] = "../../etc/passwd"; });
  EXPECT_NE(error.find("shards[0] is not a train or val shard name"), std::string::npos) << error;
  error = with([](nlohmann::json& r) { r["shards"].push_back(r["shards"][0]); });
  EXPECT_NE(error.find("lists train_0000.bin twice"), std::string::npos) << error;
  testing::write_text(dir + "/prepare.json", std::string(100000, '[') + std::string(100000, ']'));
  error = error_of(dir);
  EXPECT_NE(error.find("prepare.json: JSON nested more than"), std::string::npos) << error;
}

// Issue 15, item 8: a tokenizer of the same size from another prepare.
TEST_F(PreparedDataTest, TokenizerOfAnotherPrepareIsRefused) {
  const std::string dir = copy_of("a");
  fs::copy_file(dir_->file("c/tokenizer.model"), dir + "/tokenizer.model", fs::copy_options::overwrite_existing);
  std::string error = error_of(dir);
  EXPECT_NE(error.find("tokenizer.model has checksum"), std::string::npos) << error;
  // Even with prepare.json edited to match, each shard names its own tokenizer.
  auto report = nlohmann::json::parse(testing::read_text(dir + "/prepare.json"));
  report["tokenizer_checksum"] = fmt::format("{:016x}", checksum64(testing::read_text(dir + "/tokenizer.model")));
  testing::write_text(dir + "/prepare.json", report.dump());
  error = error_of(dir);
  EXPECT_NE(error.find("train_0000.bin was made with the tokenizer of checksum"), std::string::npos) << error;
}

// Data written before shards recorded their tokenizer still loads, with the
// same cursor fingerprint (a run resumes), and the checks possible for it.
TEST_F(PreparedDataTest, Version1DataLoadsWithTheSameFingerprint) {
  const std::string dir = copy_of("a");
  const LoaderOptions options{.batch_size = 2, .seq_len = 16, .expected_vocab_size = 400};
  auto v2 = DataLoader::open(dir, "train", options);
  ASSERT_TRUE(v2.ok()) << v2.status().message();
  downgrade_to_version_1(dir);
  auto data = PreparedData::check(dir);
  ASSERT_TRUE(data.ok()) << data.status().message();
  EXPECT_EQ(data->format_version, 1);
  auto v1 = DataLoader::open(dir, "train", options);
  ASSERT_TRUE(v1.ok()) << v1.status().message();
  EXPECT_EQ(v1->cursor().data_fingerprint, v2->cursor().data_fingerprint);
  EXPECT_TRUE(DataLoader::open(dir, "val", options).ok());

  // The fingerprint is the checksum of the shards' payload checksums, as it always was.
  std::vector<uint64_t> checksums;
  for (const std::string& path : data->train_shards) checksums.push_back(read_shard_header(path)->payload_checksum);
  EXPECT_EQ(v1->cursor().data_fingerprint, checksum64(checksums.data(), checksums.size() * sizeof(uint64_t)));
}

TEST_F(PreparedDataTest, Version1DataRefusesAnotherTokenizer) {
  const std::string dir = copy_of("a");
  downgrade_to_version_1(dir);
  fs::copy_file(dir_->file("c/tokenizer.model"), dir + "/tokenizer.model", fs::copy_options::overwrite_existing);
  const std::string error = error_of(dir);
  EXPECT_NE(error.find("tokenizer.model does not reproduce the tokens of"), std::string::npos) << error;
}

TEST_F(PreparedDataTest, MixedVersionsAreRefused) {
  const std::string dir = copy_of("a");
  downgrade_to_version_1(dir);
  fs::copy_file(dir_->file("a/prepare.json"), dir + "/prepare.json", fs::copy_options::overwrite_existing);
  const std::string error = error_of(dir);
  EXPECT_NE(error.find("shard version 1"), std::string::npos) << error;
}

// No validation split at all is kNotFound (the trainer warns and goes on).
TEST_F(PreparedDataTest, SplitWithoutShardsIsNotFound) {
  const std::string dir = copy_of("c");
  auto report = nlohmann::json::parse(testing::read_text(dir + "/prepare.json"));
  nlohmann::json train_only = nlohmann::json::array();
  for (const auto& shard : report["shards"]) {
    if (shard["split"] == "train") train_only.push_back(shard);
    else fs::remove(dir + "/" + shard["file"].get<std::string>());
  }
  report["shards"] = train_only;
  testing::write_text(dir + "/prepare.json", report.dump());
  auto val = DataLoader::open(dir, "val", {.batch_size = 1, .seq_len = 8});
  ASSERT_FALSE(val.ok());
  EXPECT_EQ(val.status().code(), StatusCode::kNotFound);
  EXPECT_NE(val.status().message().find("no 'val' shards"), std::string::npos) << val.status().message();
  EXPECT_TRUE(DataLoader::open(dir, "train", {.batch_size = 1, .seq_len = 8}).ok());
}

TEST(PreparedDataNames, OutputNames) {
  for (const char* name : {"tokenizer.model", "prepare.json", "train_0000.bin", "val_0012.bin", "train_12345.bin",
                           ".train_0003.bin.tmp.42", ".prepare.json.tmp.7", ".write_probe.99"}) {
    EXPECT_TRUE(is_prepare_output_name(name)) << name;
  }
  for (const char* name : {"corpus.txt", "train_01.bin", "train_0000.bin.bak", "test_0000.bin", ".hidden",
                           ".train_0000.bin.tmp.", ".corpus.txt.tmp.3", "checkpoints"}) {
    EXPECT_FALSE(is_prepare_output_name(name)) << name;
  }
  EXPECT_EQ(shard_file_name("val", 7), "val_0007.bin");
  EXPECT_EQ(shard_file_name("train", 12345), "train_12345.bin");
}

}  // namespace
}  // namespace sc
