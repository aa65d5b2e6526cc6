// trainer_state.json of a checkpoint (docs/checkpoint_format.md): where the
// run stood at the checkpoint's step. Together with the weights and the
// optimizer shards it is everything a resumed run needs to continue
// bit-for-bit.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace sc {

// Optimizer steps a run may have at most (the range of --steps).
inline constexpr int64_t kMaxSteps = 1'000'000'000'000;

struct TrainerState {
  int64_t step = 0;          // optimizer steps done
  double tokens_seen = 0;
  double elapsed_s = 0;      // training time the run kept up to this step
  int64_t world_size = 1;    // ranks that wrote the checkpoint
  nlohmann::json options;    // TrainOptions::to_json(), global_batch resolved
  uint64_t seed = 0;         // rng {"kind": "counter", "seed"}: all randomness is a function of it
  nlohmann::json data_cursor;  // LoaderCursor::to_json()
  nlohmann::json loss_guard;   // LossGuard::state()

  nlohmann::json to_json() const;
  // Reads and checks DIR/trainer_state.json; errors name the file and the
  // field. A checkpoint written before optimizer state was sharded (no
  // 'world_size' or 'global_batch') is refused, not guessed at. 'step' is in
  // [0, kMaxSteps], 'tokens_seen' is step x global_batch x seq_len (what
  // the trainer counts), 'elapsed_s' is in [0, 1e12].
  static Result<TrainerState> load(const std::string& checkpoint_dir);
};

}  // namespace sc
