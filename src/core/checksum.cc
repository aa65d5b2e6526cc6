#include "core/checksum.h"

#include <xxhash.h>

namespace sc {

uint64_t checksum64(const void* data, size_t size_bytes, uint64_t seed) {
  return XXH3_64bits_withSeed(data, size_bytes, seed);
}

struct StreamingChecksum::State {
  XXH3_state_t* xxh = XXH3_createState();
  ~State() { XXH3_freeState(xxh); }
};

StreamingChecksum::StreamingChecksum() : state_(std::make_unique<State>()) {
  XXH3_64bits_reset(state_->xxh);
}
StreamingChecksum::~StreamingChecksum() = default;

void StreamingChecksum::update(const void* data, size_t size_bytes) {
  XXH3_64bits_update(state_->xxh, data, size_bytes);
}

uint64_t StreamingChecksum::digest() const { return XXH3_64bits_digest(state_->xxh); }

}  // namespace sc
