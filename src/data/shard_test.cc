#include "data/shard.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <vector>

#include "test_util.h"

namespace sc {
namespace {

constexpr uint64_t kTokenizerChecksum = 0x0123456789abcdefull;

std::vector<uint32_t> sample_tokens(size_t n, uint32_t vocab) {
  std::vector<uint32_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<uint32_t>((i * 2654435761u) % vocab);
  return t;
}

void write_shard(const std::string& path, const std::vector<uint32_t>& tokens, uint32_t vocab) {
  auto writer = ShardWriter::open(path, vocab, kTokenizerChecksum);
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
  EXPECT_EQ(reader->header().version, 2u);
  EXPECT_EQ(reader->header().tokenizer_checksum, kTokenizerChecksum);
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

// Rewrites the header of `path` as `edit` says, with a valid header checksum.
void rewrite_header(const std::string& path, const std::function<void(ShardHeader&)>& edit) {
  std::string bytes = testing::read_text(path);
  ShardHeader h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  edit(h);
  h.header_checksum = checksum64(&h, offsetof(ShardHeader, header_checksum));
  std::memcpy(bytes.data(), &h, sizeof(h));
  testing::write_text(path, bytes);
}

// Shards of the version before tokenizer checksums still read, as having none.
TEST(Shard, Version1StillReads) {
  testing::TempDir dir;
  const auto tokens = sample_tokens(300, 1000);
  write_shard(dir.file("s.bin"), tokens, 1000);
  rewrite_header(dir.file("s.bin"), [](ShardHeader& h) {
    h.version = 1;
    h.tokenizer_checksum = 0;
  });
  auto reader = ShardReader::open(dir.file("s.bin"), 1000u);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  EXPECT_EQ(reader->header().version, 1u);
  EXPECT_EQ(reader->header().tokenizer_checksum, 0u);
  EXPECT_EQ(std::vector<uint32_t>(reader->tokens().begin(), reader->tokens().end()), tokens);
  rewrite_header(dir.file("s.bin"), [](ShardHeader& h) { h.version = 3; });
  reader = ShardReader::open(dir.file("s.bin"));
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("unsupported shard version 3"), std::string::npos);
}

TEST(Shard, HeaderAloneIsCheckedAgainstTheFileSize) {
  testing::TempDir dir;
  write_shard(dir.file("s.bin"), sample_tokens(300, 1000), 1000);
  auto header = read_shard_header(dir.file("s.bin"));
  ASSERT_TRUE(header.ok()) << header.status().message();
  EXPECT_EQ(header->token_count, 300u);
  EXPECT_EQ(header->tokenizer_checksum, kTokenizerChecksum);
  // A count whose size in bytes does not fit in 64 bits.
  rewrite_header(dir.file("s.bin"), [](ShardHeader& h) { h.token_count = UINT64_MAX / 2; });
  header = read_shard_header(dir.file("s.bin"));
  ASSERT_FALSE(header.ok());
  EXPECT_NE(header.status().message().find("more than a file can hold"), std::string::npos);
  EXPECT_FALSE(ShardReader::open(dir.file("s.bin")).ok());
  EXPECT_EQ(read_shard_header(dir.file("missing.bin")).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(read_shard_header(dir.path()).ok());
}

TEST(Shard, UnfinishedWriterLeavesNoShard) {
  testing::TempDir dir;
  {
    auto writer = ShardWriter::open(dir.file("s.bin"), 100, kTokenizerChecksum);
    ASSERT_TRUE(writer.ok());
    std::vector<uint32_t> t(10, 1);
    ASSERT_TRUE(writer->append(t).ok());
  }  // interrupted before finish()
  EXPECT_FALSE(std::filesystem::exists(dir.file("s.bin")));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace sc
