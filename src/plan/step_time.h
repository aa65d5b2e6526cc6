// One optimizer step on the critical path: the pipeline rank that sets the
// pace, its stage-to-stage transfers, the fill and drain, the data-parallel
// traffic compute does not hide, and the optimizer. docs/plan.md derives
// each term.
#pragma once

#include <cstdint>

#include "plan/cost_model.h"
#include "plan/gpu_share.h"
#include "plan/layer_time.h"
#include "plan/pipeline.h"

namespace sc::plan {

// One micro-batch on the slowest pipeline rank: the first (its layers and
// the embedding), a middle one (layers only) or the last (its layers, the
// output layer and the loss); all of it when pp == 1.
MicroBatchParts pipeline_pace(const StageWork& work, const PipelineShape& shape);

// Stage-to-stage transfers of one activation of T x h.
struct PipelineTransfers {
  double hop_s = 0;             // one transfer, one way, one chunk (0 when pp == 1)
  double per_micro_batch_s = 0;  // on the critical path, each way for each of the vp chunks
};
PipelineTransfers pipeline_transfers(const ClusterSpec& cluster, const Layout& layout, const MicroBatchDims& dims,
                                     const CommGroups& groups, double chunk_compute_s);

// Data-parallel traffic of one step on the fullest pipeline rank, dense and
// expert weights together.
struct DataParallelTraffic {
  double reduce_s = 0;      // gradients: all-reduce (ZeRO 0) or reduce-scatter
  double gather_s = 0;      // updated weights: all-gather (ZeRO 1-3)
  double reduce_count = 1;  // how many times a step reduces: per micro-batch with ZeRO 2/3
  double gather_count = 1;  // how many times a step gathers: per forward and backward with ZeRO 3
};
DataParallelTraffic data_parallel_traffic(const ClusterSpec& cluster, const Layout& layout, const CommGroups& groups,
                                          const ParameterShare& params, int64_t micro_batches);

// What of `traffic` compute does not hide. Overlapped, reductions run beside
// the backward and gathers beside the forward (2/3 and 1/3 of
// `chunk_compute_s` per chunk), except the last chunk's share; they cannot
// hide more than there is compute. Not overlapped, all of it is exposed.
double exposed_data_parallel_s(const DataParallelTraffic& traffic, bool overlap, double chunk_compute_s, double vp,
                               int64_t micro_batches);

// AdamW reads and writes weights, grads, master, m and v once (~32 B/param),
// over the ZeRO shard when the optimizer state is sharded.
double optimizer_step_s(const GpuSpec& gpu, const Layout& layout, const CommGroups& groups,
                        const ParameterShare& params);

StepBreakdown step_breakdown(const ClusterSpec& cluster, const Layout& layout, const MicroBatchDims& dims,
                             const CommGroups& groups, const PipelineShape& shape, const ParameterShare& params,
                             const StageWork& work, int64_t micro_batches);

}  // namespace sc::plan
