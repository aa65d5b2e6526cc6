// Time as the project measures it: unix seconds where processes compare
// notes (heartbeats, events), and a monotonic stopwatch for durations.
#pragma once

#include <chrono>

namespace sc {

inline double unix_seconds_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Seconds since it was made (or last assigned a fresh one).
struct Stopwatch {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
};

}  // namespace sc
