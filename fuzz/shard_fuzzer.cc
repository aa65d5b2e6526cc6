// A token shard (train_NNNN.bin / val_NNNN.bin from `prepare`): header
// alone, then the whole shard with and without an expected vocabulary.
// Each input is tried twice: as it is, and re-signed (both checksums made
// to match, as a tool that edits shards would), so that the checks behind
// the checksums (version, sizes, token range) are fuzzed too.
#include <cstddef>
#include <cstring>
#include <string>

#include "core/checksum.h"
#include "data/shard.h"
#include "fuzz_util.h"

namespace {

void read_shard(const std::string& path) {
  (void)sc::read_shard_header(path);
  sc::Result<sc::ShardReader> shard = sc::ShardReader::open(path);
  if (!shard.ok()) return;
  uint64_t sum = 0;
  for (uint32_t token : shard->tokens()) sum += token;
  (void)sum;
  (void)sc::ShardReader::open(path, shard->header().vocab_size + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sc::fuzz::run_guarded([&] {
    std::string bytes(sc::fuzz::as_text(data, size));
    read_shard(sc::fuzz::write_scratch("train_0000.bin", bytes));
    if (bytes.size() < sc::ShardHeader::kSizeBytes) return;
    sc::ShardHeader header;
    std::memcpy(&header, bytes.data(), sizeof(header));
    const std::string_view payload = std::string_view(bytes).substr(sc::ShardHeader::kSizeBytes);
    header.payload_checksum = sc::checksum64(payload);
    header.header_checksum = sc::checksum64(&header, offsetof(sc::ShardHeader, header_checksum));
    std::memcpy(bytes.data(), &header, sizeof(header));
    read_shard(sc::fuzz::write_scratch("train_0000.bin", bytes));
  });
}
