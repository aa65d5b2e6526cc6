// A Prometheus-style histogram of latencies in seconds: fixed buckets
// (cumulative counts up to each bound), their sum and count. The engine
// keeps one for time to first token and one for the time between tokens.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace sc {

class LatencyHistogram {
 public:
  // Upper bounds in seconds, from a fast CPU token to a slow queue wait.
  static constexpr std::array<double, 12> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1.0,  2.5,   10.0};

  void add(double seconds) {
    for (size_t i = 0; i < kBounds.size(); ++i) {
      if (seconds <= kBounds[i]) ++counts_[i];
    }
    sum_ += seconds;
    ++count_;
  }
  // Observations at most kBounds[i] seconds.
  uint64_t cumulative(size_t i) const { return counts_[i]; }
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::array<uint64_t, kBounds.size()> counts_{};
  double sum_ = 0;
  uint64_t count_ = 0;
};

}  // namespace sc
