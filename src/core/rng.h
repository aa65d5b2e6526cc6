// Counter-based random numbers: value i of stream s under seed k is a pure
// function of (k, s, i). Weight init can then run in any thread order and
// still give the same bits, and the only "RNG state" a checkpoint needs is
// the seed and a counter.
#pragma once

#include <cmath>
#include <cstdint>

namespace sc {

class CounterRng {
 public:
  CounterRng(uint64_t seed, uint64_t stream) : key_(mix(seed ^ mix(stream + 0x9E3779B97F4A7C15ull))) {}

  uint64_t bits(uint64_t counter) const { return mix(key_ + counter * 0xD1B54A32D192ED03ull); }

  // Uniform in [0, 1) with 53 random bits.
  double uniform(uint64_t counter) const { return static_cast<double>(bits(counter) >> 11) * 0x1.0p-53; }

  // Standard normal (Box-Muller on two uniforms drawn from counters 2i, 2i+1).
  double normal(uint64_t counter) const {
    double u1 = uniform(2 * counter), u2 = uniform(2 * counter + 1);
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static uint64_t mix(uint64_t x) {  // splitmix64 finalizer
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }
  uint64_t key_;
};

}  // namespace sc
