// Wall-clock time as the run directory records it (heartbeats, events):
// unix seconds, comparable across the processes of a job.
#pragma once

#include <chrono>

namespace sc {

inline double unix_seconds_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace sc
