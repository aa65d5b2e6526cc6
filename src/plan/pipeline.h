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

// Time of one step beyond m micro-batch times in Megatron's (interleaved)
// 1F1B order: (p - 1)/v micro-batch times of fill and drain (Narayanan et al.
// 2021), and what transfers of `transfer_s` per hop add when they are
// asynchronous (blocking ones are already inside `micro_batch_s`).
// Interleaved: 2 (p v - 1) transfers. The first micro-batch's forward and
// the last one's backward each cross all p v chunks in turn, and the order
// leaves no slack on those two chains. Plain 1F1B (v = 1) has no spare
// warm-up micro-batch, so each steady-state forward/backward pair also waits
// for a round trip: 2 (p - 1)/p transfers per micro-batch plus 2 (p - 2).
// An event simulation of the schedule gives the first exactly and the second
// within a transfer (src/plan/pipeline_test.cc).
double pipeline_overhead_s(int64_t pp, int64_t vp, int64_t micro_batches, double micro_batch_s, double transfer_s,
                           bool async_transfers);

}  // namespace sc::plan
