// A pseudo-random bijection on [0, n) that needs no table: a 4-round Feistel
// network over the smallest even-bit power of two >= n, with cycle walking
// back into range. Lets the loader shuffle billions of windows per epoch in
// O(1) memory and jump to any position (a saved cursor) in O(1) time.
#pragma once

#include <cstdint>

namespace sc {

inline uint64_t mix64(uint64_t x) {  // splitmix64 finalizer
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class IndexPermutation {
 public:
  IndexPermutation(uint64_t n, uint64_t key) : n_(n) {
    uint32_t bits = 0;
    while (bits < 64 && (uint64_t{1} << bits) < n) ++bits;
    half_bits_ = (bits + 1) / 2;
    if (half_bits_ == 0) half_bits_ = 1;
    mask_ = (uint64_t{1} << half_bits_) - 1;
    for (int r = 0; r < kRounds; ++r) round_keys_[r] = mix64(key + static_cast<uint64_t>(r) * 0x632BE59BD9B4E019ull);
  }

  uint64_t size() const { return n_; }

  // The image of i (i < size()).
  uint64_t operator()(uint64_t i) const {
    uint64_t x = i;
    do {
      x = encrypt(x);
    } while (x >= n_);
    return x;
  }

 private:
  static constexpr int kRounds = 4;
  uint64_t encrypt(uint64_t x) const {
    uint64_t left = x >> half_bits_, right = x & mask_;
    for (int r = 0; r < kRounds; ++r) {
      uint64_t next = left ^ (mix64(right ^ round_keys_[r]) & mask_);
      left = right;
      right = next;
    }
    return (left << half_bits_) | right;
  }
  uint64_t n_;
  uint32_t half_bits_;
  uint64_t mask_;
  uint64_t round_keys_[kRounds];
};

}  // namespace sc
