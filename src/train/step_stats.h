// The figures of one optimizer step that the ranks exchange (riding along
// with the gradient norm in one all-gather, train/data_parallel.h) and their
// combination. Combined in global micro-batch order (rank by rank,
// micro-batch by micro-batch), so the step's loss is the same double on any
// number of ranks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"

namespace sc {

// This rank's part of the checkpoint in flight, as the exchange reports it.
enum class CheckpointPart { kBusy, kWritten, kFailed };

struct RankStepStats {
  std::vector<double> loss, aux, z;  // per micro-batch of this rank, in order
  bool time_up = false;              // this rank's clock passed --time-limit
  CheckpointPart checkpoint = CheckpointPart::kBusy;
  int64_t dropped = 0;               // MoE assignments over capacity
  std::vector<int64_t> routed;       // [layer · experts + expert] assignments
};

// How RankStepStats travel: a vector of doubles of one length on every rank
// (the same micro-batches and MoE shape), packed and unpacked only here.
std::vector<double> pack_step_stats(const RankStepStats& stats);
Result<RankStepStats> unpack_step_stats(std::span<const double> packed, size_t micro_batches, size_t routed_size);

struct StepStats {
  double loss = 0, aux = 0, z = 0;       // means over the global batch's micro-batches
  bool time_up = false;                  // on any rank: all stop together
  bool checkpoint_files_written = true;  // on every rank: the checkpoint can be committed
  int checkpoint_failed_rank = -1;       // the first rank whose writer failed (then nobody commits)
  int64_t dropped = 0;
  std::vector<std::vector<int64_t>> expert_tokens;  // [layer][expert], summed over ranks
};

// `by_rank` in rank order; every entry has the same number of micro-batches
// and layers · experts routed counts.
StepStats combine_step_stats(const std::vector<RankStepStats>& by_rank, size_t layers, size_t experts);

}  // namespace sc
