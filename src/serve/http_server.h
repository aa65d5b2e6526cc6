// `supercluster serve`: the HTTP server in front of the engine
// (docs/serving.md). It binds first, answers /health with 503 while the
// checkpoint loads, then serves the OpenAI-compatible endpoints until
// SIGTERM or SIGINT, after which it refuses new requests (503), lets the
// ones in flight finish, and returns. With `follow` it switches to each
// newer checkpoint the run commits, between requests.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "core/status.h"
#include "model/packed_weights.h"  // WeightFormat
#include "serve/checkpoint_follower.h"

namespace sc {

struct ServeOptions {
  std::string checkpoint;  // a run directory, its checkpoints/ or one checkpoint
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (the "listening on" line says which)
  size_t slots = 4;
  size_t context = 0;  // 0: the model's max_position_embeddings
  size_t threads = 1;
  WeightFormat weights = WeightFormat::kF32;  // of the matrices (model/packed_weights.h)
  std::string api_key;  // empty: no key needed
  size_t max_queue = 64;
  std::chrono::milliseconds step_delay{0};  // test hook, see EngineOptions
  // Serve each newer checkpoint committed into the run's checkpoints/
  // (`checkpoint` is then a run or its checkpoints/, not one checkpoint).
  bool follow = false;
  std::chrono::milliseconds follow_poll_interval = kFollowPollInterval;  // tests shorten it
};

// Runs the server until a signal stops it; an error if it cannot bind or the
// checkpoint does not load.
Status serve(const ServeOptions& options);

}  // namespace sc
