#include "data/shard.h"

#include <cstring>

namespace sc {
namespace {
constexpr size_t kHeaderChecksummedBytes = offsetof(ShardHeader, header_checksum);
}

Result<ShardWriter> ShardWriter::open(const std::string& path, uint32_t vocab_size) {
  SC_ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::open(path));
  // Placeholder header: all zeros never validates, so a torn file is rejected.
  char zeros[ShardHeader::kSizeBytes] = {};
  SC_RETURN_IF_ERROR(file.write(zeros, sizeof(zeros)));
  return ShardWriter(std::move(file), vocab_size);
}

Status ShardWriter::append(std::span<const uint32_t> tokens) {
  checksum_->update(tokens.data(), tokens.size_bytes());
  token_count_ += tokens.size();
  return file_.write(tokens.data(), tokens.size_bytes());
}

Status ShardWriter::finish() {
  ShardHeader h{};
  std::memcpy(h.magic, ShardHeader::kMagic, sizeof(h.magic));
  h.version = ShardHeader::kVersion;
  h.header_bytes = ShardHeader::kSizeBytes;
  h.vocab_size = vocab_size_;
  h.token_bytes = sizeof(uint32_t);
  h.token_count = token_count_;
  h.payload_checksum = checksum_->digest();
  h.document_count = document_count_;
  h.header_checksum = checksum64(&h, kHeaderChecksummedBytes);
  SC_RETURN_IF_ERROR(file_.write_at(0, &h, sizeof(h)));
  return file_.commit();
}

Result<ShardReader> ShardReader::open(const std::string& path, std::optional<uint32_t> expected_vocab_size) {
  SC_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  if (file.size() < ShardHeader::kSizeBytes) {
    return Status::corruption("{}: truncated shard: {} bytes, smaller than the {}-byte header", path,
                              file.size(), ShardHeader::kSizeBytes);
  }
  ShardHeader h;
  std::memcpy(&h, file.data(), sizeof(h));
  if (std::memcmp(h.magic, ShardHeader::kMagic, sizeof(h.magic)) != 0) {
    return Status::corruption("{}: not a token shard (bad magic; expected 'SCTOKENS')", path);
  }
  if (checksum64(&h, kHeaderChecksummedBytes) != h.header_checksum) {
    return Status::corruption("{}: header checksum mismatch (corrupted header)", path);
  }
  if (h.version != ShardHeader::kVersion) {
    return Status::corruption("{}: unsupported shard version {} (this build reads version {})", path,
                              h.version, ShardHeader::kVersion);
  }
  if (h.header_bytes != ShardHeader::kSizeBytes || h.token_bytes != sizeof(uint32_t)) {
    return Status::corruption("{}: unexpected header size {} or token size {}", path, h.header_bytes,
                              h.token_bytes);
  }
  const uint64_t expected_size = ShardHeader::kSizeBytes + h.token_count * sizeof(uint32_t);
  if (file.size() != expected_size) {
    return Status::corruption("{}: {} shard: {} bytes on disk, header says {} tokens ({} bytes)", path,
                              file.size() < expected_size ? "truncated" : "oversized", file.size(),
                              h.token_count, expected_size);
  }
  if (expected_vocab_size && h.vocab_size != *expected_vocab_size) {
    return Status::invalid("{}: shard has vocab size {}, expected {}", path, h.vocab_size,
                           *expected_vocab_size);
  }
  const uint8_t* payload = file.data() + ShardHeader::kSizeBytes;
  const size_t payload_bytes = h.token_count * sizeof(uint32_t);
  if (checksum64(payload, payload_bytes) != h.payload_checksum) {
    return Status::corruption("{}: payload checksum mismatch (corrupted tokens)", path);
  }
  ShardReader reader(std::move(file), h);
  for (uint32_t t : reader.tokens()) {
    if (t >= h.vocab_size) {
      return Status::corruption("{}: token id {} is not below the vocab size {}", path, t, h.vocab_size);
    }
  }
  return reader;
}

}  // namespace sc
