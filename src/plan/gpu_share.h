// What one GPU of a layout works on: the sizes of its share of a
// micro-batch, the communication groups it belongs to, and its share of the
// parameters per layer and on the fullest pipeline rank. The parts of the
// cost model (layer_time, step_time, memory_model) all start from these.
#pragma once

#include <cstdint>

#include "model/counts.h"
#include "plan/collectives.h"
#include "plan/cost_model.h"
#include "plan/pipeline.h"
#include "plan/plan_model.h"

namespace sc::plan {

inline constexpr double kBf16 = 2;  // bytes per activation / weight element

// Sizes as doubles, since each one only ever enters a floating-point formula;
// the short names of the formulas (Korthikanti et al. 2022) in comments.
struct MicroBatchDims {
  double tp = 1, vp = 1, cp = 1, ep = 1;
  double layers = 0;             // L
  double hidden = 0;             // h
  double query_width = 0;        // attention heads x head_dim (Hq D)
  double kv_width = 0;           // key-value heads x head_dim
  double mlp_width = 0;          // F, the real MLP hidden width
  double vocab = 0;              // V
  double seq_len = 0;            // s
  double micro_batch = 0;        // b, sequences
  double experts = 1;            // E (1 when dense)
  double experts_per_token = 1;  // k (1 when dense)
  double tokens = 0;             // T = b s / cp: one micro-batch's tokens on one TP group
  // Without sequence parallelism the h-wide elementwise work and its saved
  // inputs are repeated on every TP rank (Korthikanti et al. 2022, 4.2.2).
  double sp_split = 1;           // tp with sequence parallelism, else 1
};
MicroBatchDims micro_batch_dims(const PlanModel& model, const Layout& layout, const RunSpec& run);

// Megatron's rank order: tp, cp, ep within dp, dp, pp.
struct CommGroups {
  Group tp, cp, ep;
  Group dense_dp;   // dp x cp: the ZeRO / gradient group of dense weights
  Group expert_dp;  // dp x cp / ep: the same for expert weights
  bool pp_inside_node = false;  // neighbouring pipeline stages share a node
};
CommGroups comm_groups(const ClusterSpec& cluster, const Layout& layout);

// Parameters on one GPU (split over tp, experts also over ep).
struct ParameterShare {
  double dense_per_layer = 0;   // attention, norms and router of an MoE layer, all of a dense one
  double expert_per_layer = 0;  // the experts of an MoE layer
  double per_layer = 0;         // the two
  double vocab = 0;             // the embedding or the output matrix, V h / tp
  bool tied = false;            // one matrix is both (pp == 1: held once)
  // On the pipeline rank that holds the most: what its data-parallel groups
  // reduce and its optimizer updates.
  double max_rank_dense = 0;
  double max_rank_expert = 0;
};
ParameterShare parameter_share(const ParameterCounts& counts, const MicroBatchDims& dims, const PipelineShape& shape);

// Micro-batches per pipeline per step.
int64_t micro_batches_per_step(const Layout& layout, const RunSpec& run);

}  // namespace sc::plan
