// Memory per GPU on each pipeline rank: weights, gradients and optimizer
// states (sharded by ZeRO), activations kept for the backward (Korthikanti
// et al. 2022, section 4, generalized to GQA, gated MLPs, MoE and fused
// attention) times the chunks in flight, and fixed buffers. docs/plan.md,
// "Memory".
#pragma once

#include <cstdint>

#include "plan/cost_model.h"
#include "plan/gpu_share.h"
#include "plan/pipeline.h"

namespace sc::plan {

// Bytes of activations one GPU keeps, per micro-batch.
struct ActivationSizes {
  double kept_per_layer = 0;    // what each layer keeps until its backward (its input alone with full recompute)
  double recomputed_layer = 0;  // full recompute: the one layer being recomputed
  double chunk_output = 0;      // a pipeline chunk's output, when not freed once sent
  double logits = 0;            // the last rank's bf16 logits + fp32 loss input
};
ActivationSizes activation_sizes(const PlanModel& model, const Layout& layout, const MicroBatchDims& dims);

// Activations on pipeline rank `rank` holding `layers` layers, over the
// chunk-micro-batches it has in flight.
double activations_on_rank(const ActivationSizes& sizes, const Layout& layout, const PipelineShape& shape,
                           int64_t rank, int64_t layers, int64_t micro_batches);

// Everything on pipeline rank `rank` holding `layers` layers and
// `vocab_params` parameters of embedding / output matrix.
MemoryBreakdown memory_on_rank(const ActivationSizes& sizes, const Layout& layout, const PipelineShape& shape,
                               const CommGroups& groups, const ParameterShare& params, int64_t rank, int64_t layers,
                               double vocab_params, int64_t micro_batches);

// The rank that needs the most (first, a middle one, or last), against the
// GPU's capacity.
MemoryBreakdown memory_per_gpu(const PlanModel& model, const GpuSpec& gpu, const Layout& layout,
                               const MicroBatchDims& dims, const CommGroups& groups, const PipelineShape& shape,
                               const ParameterShare& params, int64_t micro_batches);

}  // namespace sc::plan
