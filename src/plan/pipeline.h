// Where layers sit in a pipeline and how many micro-batches each stage holds
// in flight under 1F1B (Narayanan et al. 2021) and its interleaved form with
// v model chunks per rank, as Megatron-LM schedules them.
#pragma once

#include <cstdint>

namespace sc::plan {

struct PipelineShape {
  int64_t pp = 1, vp = 1;
  // Transformer layers on the first rank, on a middle rank (if pp > 2) and on
  // the last rank. The first also runs the embedding, the last the output
  // layer and the loss.
  int64_t first_layers = 0, middle_layers = 0, last_layers = 0;
};

// `balance`: the embedding and the output + loss each take one layer's slot
// in the split, as Llama 3 did (section 3.3.2: "the first model chunk on the
// first stage has only the embedding") and Megatron-core's
// account_for_embedding/loss_in_pipeline_split do. Otherwise layers are
// split evenly (ceil) and the first and last ranks carry the extra work.
PipelineShape pipeline_shape(int64_t layers, int64_t pp, int64_t vp, bool balance);

// Chunk-micro-batches (one chunk is 1/vp of a rank's layers) whose
// activations rank `rank` holds at once: the warm-up forwards plus one.
// Non-interleaved: min(m, pp - rank). Interleaved (Megatron):
// min(m * vp, 2 (pp - rank - 1) + (vp - 1) pp + 1).
double in_flight_chunks(const PipelineShape& shape, int64_t rank, int64_t micro_batches);

}  // namespace sc::plan
