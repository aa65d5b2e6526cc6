// The server's counters and their Prometheus text exposition (GET /metrics).
// HTTP handler threads count responses; the engine's own counters (tokens,
// queue, slots) are read when the page is made.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "serve/engine.h"

namespace sc {

class ServerMetrics {
 public:
  void count_response(int status);
  // The Prometheus text format, version 0.0.4.
  std::string render(const Engine::Stats& engine, size_t slots, int64_t step) const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> responses_by_status_;
};

}  // namespace sc
