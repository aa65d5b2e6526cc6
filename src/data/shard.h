// Token shards: a 64-byte header followed by uint32 tokens, little-endian.
// The bytes, the checksums and the validation rules are in docs/shard_format.md.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "core/checksum.h"
#include "core/file_util.h"
#include "core/status.h"

namespace sc {

struct ShardHeader {
  static constexpr char kMagic[8] = {'S', 'C', 'T', 'O', 'K', 'E', 'N', 'S'};
  static constexpr uint32_t kVersion = 2;        // written
  static constexpr uint32_t kOldestVersion = 1;  // still read: no tokenizer checksum
  static constexpr uint32_t kSizeBytes = 64;

  char magic[8];
  uint32_t version;
  uint32_t header_bytes;
  uint32_t vocab_size;
  uint32_t token_bytes;  // 4: tokens are uint32
  uint64_t token_count;
  uint64_t payload_checksum;  // XXH3-64 of the token bytes
  uint64_t document_count;
  uint64_t tokenizer_checksum;  // XXH3-64 of tokenizer.model; version 1: reserved, read as 0
  uint64_t header_checksum;  // XXH3-64 of the 56 bytes before this field
};
static_assert(sizeof(ShardHeader) == ShardHeader::kSizeBytes);

// Streams tokens into a shard; finish() fills in the header and commits the
// file atomically. A writer dropped before finish() leaves nothing behind.
class ShardWriter {
 public:
  static Result<ShardWriter> open(const std::string& path, uint32_t vocab_size, uint64_t tokenizer_checksum);
  Status append(std::span<const uint32_t> tokens);
  void count_document() { ++document_count_; }
  Status finish();
  uint64_t token_count() const { return token_count_; }
  const std::string& path() const { return file_.path(); }

 private:
  ShardWriter(AtomicFileWriter file, uint32_t vocab_size, uint64_t tokenizer_checksum)
      : file_(std::move(file)),
        vocab_size_(vocab_size),
        tokenizer_checksum_(tokenizer_checksum),
        checksum_(std::make_unique<StreamingChecksum>()) {}
  AtomicFileWriter file_;
  uint32_t vocab_size_;
  uint64_t tokenizer_checksum_;
  uint64_t token_count_ = 0;
  uint64_t document_count_ = 0;
  std::unique_ptr<StreamingChecksum> checksum_;
};

// The header of a shard, checked (magic, header checksum, version, sizes, and
// the file's size against the token count) without reading the payload.
Result<ShardHeader> read_shard_header(const std::string& path);

// A validated, memory-mapped shard. open() checks magic, version, sizes, both
// checksums, that every token is below the vocab size, and (if given) that
// the vocab size is the one expected.
class ShardReader {
 public:
  static Result<ShardReader> open(const std::string& path,
                                  std::optional<uint32_t> expected_vocab_size = std::nullopt);
  const ShardHeader& header() const { return header_; }
  std::span<const uint32_t> tokens() const {
    return {reinterpret_cast<const uint32_t*>(file_.data() + ShardHeader::kSizeBytes),
            static_cast<size_t>(header_.token_count)};
  }
  const std::string& path() const { return file_.path(); }

 private:
  ShardReader(MappedFile file, ShardHeader header) : file_(std::move(file)), header_(header) {}
  MappedFile file_;
  ShardHeader header_;
};

}  // namespace sc
