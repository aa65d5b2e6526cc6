#include "train/step_stats.h"

namespace sc {

namespace {
// Layout: [loss, aux, z] per micro-batch, then time_up, checkpoint part,
// dropped, then the routed counts.
constexpr size_t kPerMicroBatch = 3, kScalars = 3;
}  // namespace

std::vector<double> pack_step_stats(const RankStepStats& s) {
  std::vector<double> out;
  out.reserve(kPerMicroBatch * s.loss.size() + kScalars + s.routed.size());
  for (size_t i = 0; i < s.loss.size(); ++i) out.insert(out.end(), {s.loss[i], s.aux[i], s.z[i]});
  out.insert(out.end(), {s.time_up ? 1.0 : 0.0, static_cast<double>(static_cast<int>(s.checkpoint)),
                         static_cast<double>(s.dropped)});
  for (int64_t count : s.routed) out.push_back(static_cast<double>(count));
  return out;
}

Result<RankStepStats> unpack_step_stats(std::span<const double> packed, size_t micro_batches, size_t routed_size) {
  const size_t expected = kPerMicroBatch * micro_batches + kScalars + routed_size;
  if (packed.size() != expected) {
    return Status::internal("step statistics of {} values, expected {} ({} micro-batches, {} routed counts)",
                            packed.size(), expected, micro_batches, routed_size);
  }
  RankStepStats s;
  for (size_t m = 0; m < micro_batches; ++m) {
    s.loss.push_back(packed[kPerMicroBatch * m]);
    s.aux.push_back(packed[kPerMicroBatch * m + 1]);
    s.z.push_back(packed[kPerMicroBatch * m + 2]);
  }
  const size_t tail = kPerMicroBatch * micro_batches;
  s.time_up = packed[tail] > 0;
  const int part = static_cast<int>(packed[tail + 1]);
  if (part < 0 || part > static_cast<int>(CheckpointPart::kFailed)) {
    return Status::internal("step statistics: checkpoint part {} is not a state", part);
  }
  s.checkpoint = static_cast<CheckpointPart>(part);
  s.dropped = static_cast<int64_t>(packed[tail + 2]);
  for (size_t i = 0; i < routed_size; ++i) s.routed.push_back(static_cast<int64_t>(packed[tail + kScalars + i]));
  return s;
}

StepStats combine_step_stats(const std::vector<RankStepStats>& by_rank, size_t layers, size_t experts) {
  StepStats g;
  g.expert_tokens.assign(layers, std::vector<int64_t>(experts, 0));
  size_t micro_batches = 0;
  for (size_t rank = 0; rank < by_rank.size(); ++rank) {
    const RankStepStats& r = by_rank[rank];
    for (size_t m = 0; m < r.loss.size(); ++m) {
      g.loss += r.loss[m];
      g.aux += r.aux[m];
      g.z += r.z[m];
    }
    micro_batches += r.loss.size();
    g.time_up = g.time_up || r.time_up;
    g.checkpoint_files_written = g.checkpoint_files_written && r.checkpoint == CheckpointPart::kWritten;
    if (r.checkpoint == CheckpointPart::kFailed && g.checkpoint_failed_rank < 0) {
      g.checkpoint_failed_rank = static_cast<int>(rank);
    }
    g.dropped += r.dropped;
    for (size_t i = 0; i < layers * experts && i < r.routed.size(); ++i) {
      g.expert_tokens[i / experts][i % experts] += r.routed[i];
    }
  }
  const double n = static_cast<double>(micro_batches);
  g.loss /= n;
  g.aux /= n;
  g.z /= n;
  return g;
}

}  // namespace sc
