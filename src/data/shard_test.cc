#include "data/shard.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <vector>

#include "test_util.h"

namespace sc {
namespace {

std::vector<uint32_t> sample_tokens(size_t n, uint32_t vocab) {
  std::vector<uint32_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<uint32_t>((i * 2654435761u) % vocab);
  return t;
}

void write_shard(const std::string& path, const std::vector<uint32_t>& tokens, uint32_t vocab) {
  auto writer = ShardWriter::open(path, vocab);
  ASSERT_TRUE(writer.ok()) << writer.status().message();
  ASSERT_TRUE(writer->append(std::span(tokens).first(tokens.size() / 2)).ok());
  writer->count_document();
  ASSERT_TRUE(writer->append(std::span(tokens).subspan(tokens.size() / 2)).ok());
  writer->count_document();
  ASSERT_TRUE(writer->finish().ok());
}

void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x40));
}

TEST(Shard, WriteThenReadGivesSameTokens) {
  testing::TempDir dir;
  auto tokens = sample_tokens(1001, 500);
  write_shard(dir.file("train_0000.bin"), tokens, 500);
  auto reader = ShardReader::open(dir.file("train_0000.bin"), 500u);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  EXPECT_EQ(reader->header().token_count, 1001u);
  EXPECT_EQ(reader->header().document_count, 2u);
  EXPECT_EQ(reader->header().vocab_size, 500u);
  EXPECT_EQ(std::vector<uint32_t>(reader->tokens().begin(), reader->tokens().end()), tokens);
  EXPECT_EQ(std::filesystem::file_size(dir.file("train_0000.bin")), 64u + 4 * 1001);
}

TEST(Shard, FlippedPayloadByteIsDetected) {
  testing::TempDir dir;
  write_shard(dir.file("s.bin"), sample_tokens(300, 1000), 1000);
  flip_byte(dir.file("s.bin"), 64 + 4 * 150 + 1);
  auto reader = ShardReader::open(dir.file("s.bin"));
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kCorruption);
  EXPECT_NE(reader.status().message().find("payload checksum"), std::string::npos) << reader.status().message();
  EXPECT_NE(reader.status().message().find("s.bin"), std::string::npos);
}

TEST(Shard, FlippedHeaderByteIsDetected) {
  testing::TempDir dir;
  write_shard(dir.file("s.bin"), sample_tokens(300, 1000), 1000);
  flip_byte(dir.file("s.bin"), 24);  // inside token_count
  auto reader = ShardReader::open(dir.file("s.bin"));
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("header checksum"), std::string::npos) << reader.status().message();
}

TEST(Shard, TruncationIsDetected) {
  testing::TempDir dir;
  write_shard(dir.file("s.bin"), sample_tokens(300, 1000), 1000);
  std::filesystem::resize_file(dir.file("s.bin"), 64 + 4 * 299);
  auto reader = ShardReader::open(dir.file("s.bin"));
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("truncated"), std::string::npos) << reader.status().message();
  std::filesystem::resize_file(dir.file("s.bin"), 10);
  reader = ShardReader::open(dir.file("s.bin"));
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("truncated"), std::string::npos) << reader.status().message();
}

TEST(Shard, OtherVocabSizeIsRejected) {
  testing::TempDir dir;
  write_shard(dir.file("s.bin"), sample_tokens(100, 300), 300);
  auto reader = ShardReader::open(dir.file("s.bin"), 8192u);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("vocab size 300, expected 8192"), std::string::npos)
      << reader.status().message();
}

TEST(Shard, NotAShard) {
  testing::TempDir dir;
  testing::write_text(dir.file("text.bin"), std::string(200, 'a'));
  auto reader = ShardReader::open(dir.file("text.bin"));
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("bad magic"), std::string::npos);
}

TEST(Shard, UnfinishedWriterLeavesNoShard) {
  testing::TempDir dir;
  {
    auto writer = ShardWriter::open(dir.file("s.bin"), 100);
    ASSERT_TRUE(writer.ok());
    std::vector<uint32_t> t(10, 1);
    ASSERT_TRUE(writer->append(t).ok());
  }  // interrupted before finish()
  EXPECT_FALSE(std::filesystem::exists(dir.file("s.bin")));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace sc
