#include "data/shard.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sc {
namespace {
constexpr size_t kHeaderChecksummedBytes = offsetof(ShardHeader, header_checksum);

// Rules 1-5 of docs/shard_format.md: the header, and the file's size against it.
Result<ShardHeader> validate_header(const std::string& path, const uint8_t* bytes, uint64_t file_size) {
  if (file_size < ShardHeader::kSizeBytes) {
    return Status::corruption("{}: truncated shard: {} bytes, smaller than the {}-byte header", path, file_size,
                              ShardHeader::kSizeBytes);
  }
  ShardHeader h;
  std::memcpy(&h, bytes, sizeof(h));
  if (std::memcmp(h.magic, ShardHeader::kMagic, sizeof(h.magic)) != 0) {
    return Status::corruption("{}: not a token shard (bad magic; expected 'SCTOKENS')", path);
  }
  if (checksum64(&h, kHeaderChecksummedBytes) != h.header_checksum) {
    return Status::corruption("{}: header checksum mismatch (corrupted header)", path);
  }
  if (h.version < ShardHeader::kOldestVersion || h.version > ShardHeader::kVersion) {
    return Status::corruption("{}: unsupported shard version {} (this build reads versions {} to {})", path,
                              h.version, ShardHeader::kOldestVersion, ShardHeader::kVersion);
  }
  if (h.version == 1) h.tokenizer_checksum = 0;  // reserved, zero
  if (h.header_bytes != ShardHeader::kSizeBytes || h.token_bytes != sizeof(uint32_t)) {
    return Status::corruption("{}: unexpected header size {} or token size {}", path, h.header_bytes,
                              h.token_bytes);
  }
  // A count past what any file holds would overflow the size below.
  if (h.token_count > (UINT64_MAX - ShardHeader::kSizeBytes) / sizeof(uint32_t)) {
    return Status::corruption("{}: header says {} tokens, more than a file can hold", path, h.token_count);
  }
  const uint64_t expected_size = ShardHeader::kSizeBytes + h.token_count * sizeof(uint32_t);
  if (file_size != expected_size) {
    return Status::corruption("{}: {} shard: {} bytes on disk, header says {} tokens ({} bytes)", path,
                              file_size < expected_size ? "truncated" : "oversized", file_size, h.token_count,
                              expected_size);
  }
  return h;
}
}  // namespace

Result<ShardHeader> read_shard_header(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("{}: no such file", path);
    return Status::io_error("{}: cannot open: {}", path, std::strerror(errno));
  }
  struct stat st {};
  uint8_t bytes[ShardHeader::kSizeBytes] = {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const ssize_t n = stat_ok ? ::pread(fd, bytes, sizeof(bytes), 0) : -1;
  const int read_errno = errno;
  ::close(fd);
  if (!stat_ok || n < 0) return Status::io_error("{}: cannot read: {}", path, std::strerror(read_errno));
  if (!S_ISREG(st.st_mode)) return Status::invalid("{}: not a regular file", path);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  // The file shrank between fstat and pread.
  if (static_cast<uint64_t>(n) < std::min<uint64_t>(size, sizeof(bytes))) {
    return Status::io_error("{}: short read of the header", path);
  }
  return validate_header(path, bytes, size);
}

Result<ShardWriter> ShardWriter::open(const std::string& path, uint32_t vocab_size, uint64_t tokenizer_checksum) {
  SC_ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::open(path));
  // Placeholder header: all zeros never validates, so a torn file is rejected.
  char zeros[ShardHeader::kSizeBytes] = {};
  SC_RETURN_IF_ERROR(file.write(zeros, sizeof(zeros)));
  return ShardWriter(std::move(file), vocab_size, tokenizer_checksum);
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
  h.tokenizer_checksum = tokenizer_checksum_;
  h.header_checksum = checksum64(&h, kHeaderChecksummedBytes);
  SC_RETURN_IF_ERROR(file_.write_at(0, &h, sizeof(h)));
  return file_.commit();
}

Result<ShardReader> ShardReader::open(const std::string& path, std::optional<uint32_t> expected_vocab_size) {
  SC_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  SC_ASSIGN_OR_RETURN(const ShardHeader h, validate_header(path, file.data(), file.size()));
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
