// One checksum for every file format: XXH3-64 (xxhash). Fast enough to verify
// a shard at memory bandwidth, and the same function the checkpoint manifest uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace sc {

uint64_t checksum64(const void* data, size_t size_bytes, uint64_t seed = 0);
inline uint64_t checksum64(std::string_view bytes, uint64_t seed = 0) {
  return checksum64(bytes.data(), bytes.size(), seed);
}

// Streaming form: update() in pieces gives the same value as checksum64 of the whole.
class StreamingChecksum {
 public:
  StreamingChecksum();
  ~StreamingChecksum();
  StreamingChecksum(const StreamingChecksum&) = delete;
  StreamingChecksum& operator=(const StreamingChecksum&) = delete;
  void update(const void* data, size_t size_bytes);
  uint64_t digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace sc
