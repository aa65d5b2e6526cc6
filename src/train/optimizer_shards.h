// The AdamW moments in a checkpoint, one file per data-parallel rank
// (docs/checkpoint_format.md):
//
//   optimizer-RRRRR-of-NNNNN.safetensors
//     adamw.m, adamw.v   F32 [k]   the rank's moments, packed segment by segment
//     __metadata__ "segments"      JSON [[begin, end, local], ...]: moments of
//                                  parameters [begin, end) of the flat buffer
//                                  are at [local, local + end - begin)
//
// Each rank writes its own file; loading reads whatever files the checkpoint
// has and copies every overlap with this rank's segments, so a checkpoint
// written on 4 ranks resumes on 2 or 1 (and the other way).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "train/adamw.h"

namespace sc {

// Writes DIR/optimizer-<rank>-of-<world>.safetensors (run/run_paths.h) atomically: moments `m`
// and `v` laid out by `segments` (AdamW::segments(); the trainer passes
// staged copies). Segments are clipped to the layout's `num_floats`
// (padding is not state).
Status save_optimizer_shard(const std::string& dir, int rank, int world, const std::vector<OwnedSegment>& segments,
                            std::span<const float> m, std::span<const float> v, size_t num_floats, int64_t step);

// Fills the moments of adamw's segments (within `num_floats`) from DIR's
// optimizer files, written on any number of ranks. Missing files, or moments
// the files do not cover, are errors naming the checkpoint.
Status load_optimizer_shards(const std::string& dir, AdamW& adamw, size_t num_floats);

}  // namespace sc
