// Time of one micro-batch, forward + backward (+ recompute), on one GPU, by
// part: through the average transformer layer, through the output layer and
// loss, and through the embedding. Kernels from kernel_model.h, collectives
// from collectives.h; docs/plan.md derives each term.
#pragma once

#include "plan/cost_model.h"
#include "plan/gpu_share.h"

namespace sc::plan {

struct MicroBatchParts {
  double gemm = 0, attention = 0, elementwise = 0, grad_accum = 0, tp = 0, ep = 0, cp = 0;
  double total() const { return gemm + attention + elementwise + grad_accum + tp + ep + cp; }
  MicroBatchParts operator*(double k) const {
    return {gemm * k, attention * k, elementwise * k, grad_accum * k, tp * k, ep * k, cp * k};
  }
  MicroBatchParts operator+(const MicroBatchParts& o) const {
    return {gemm + o.gemm, attention + o.attention, elementwise + o.elementwise, grad_accum + o.grad_accum,
            tp + o.tp, ep + o.ep, cp + o.cp};
  }
};

// Forward GEMMs of one layer: QKV, attention output and MLP; an MoE layer's
// router and the experts this GPU holds, each with its expected tokens.
struct LayerGemms {
  double dense_s = 0;
  double moe_s = 0;  // 0 when the model is dense
};
LayerGemms layer_forward_gemms(const GpuSpec& gpu, const PlanModel& model, const MicroBatchDims& dims);

// The attention core (scores, softmax, weighted sum) of one layer.
struct AttentionCore {
  double forward_s = 0, backward_s = 0;
};
AttentionCore attention_core(const GpuSpec& gpu, const PlanModel& model, const SoftwareStack& software,
                             const MicroBatchDims& dims);

// Bandwidth-bound work of one layer: norms, residual adds, dropout masks,
// the MLP activation, rotary.
struct ElementwiseWork {
  double forward_s = 0;
  double selective_recompute_s = 0;  // what selective recompute with fused attention redoes
};
ElementwiseWork elementwise_work(const GpuSpec& gpu, const PlanModel& model, Recompute recompute,
                                 const MicroBatchDims& dims);

// One of each collective a layer issues per micro-batch.
struct LayerCollectives {
  double tp_s = 0;  // an all-reduce's worth on the TP group (or all-gather + reduce-scatter with SP)
  double ep_s = 0;  // an all-to-all of the routed tokens
  double cp_s = 0;  // the K/V all-gather of ring attention
};
LayerCollectives layer_collectives(const ClusterSpec& cluster, const PlanModel& model, const CommGroups& groups,
                                   const MicroBatchDims& dims);

// Adding a micro-batch's fresh gradient of `params` parameters into the main
// one, when not fused into the weight-gradient GEMM.
double grad_accumulation_s(const GpuSpec& gpu, const SoftwareStack& software, double params);

// The work units pipeline stages are made of, per micro-batch, at the pace
// of the job's slowest GPU (its kernels take longer; communication does not).
struct StageWork {
  MicroBatchParts layer;      // the average transformer layer
  MicroBatchParts head;       // output layer and loss (last rank)
  MicroBatchParts embedding;  // embedding (first rank)
};
// `slowest_gpu_factor`: speed of the slowest of the job's GPUs relative to
// the median one (ClusterSpec::slowest_gpu_factor).
StageWork stage_work(const PlanModel& model, const ClusterSpec& cluster, const Layout& layout,
                     const MicroBatchDims& dims, const CommGroups& groups, const ParameterShare& params,
                     double slowest_gpu_factor);

}  // namespace sc::plan
