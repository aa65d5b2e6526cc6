#include "plan/step_time.h"

#include <algorithm>
#include <utility>

#include "plan/collectives.h"
#include "plan/kernel_model.h"

namespace sc::plan {

MicroBatchParts pipeline_pace(const StageWork& w, const PipelineShape& shape) {
  if (shape.pp <= 1) return w.layer * static_cast<double>(shape.first_layers) + w.embedding + w.head;
  const MicroBatchParts first = w.layer * static_cast<double>(shape.first_layers) + w.embedding;
  const MicroBatchParts last = w.layer * static_cast<double>(shape.last_layers) + w.head;
  const MicroBatchParts middle = w.layer * static_cast<double>(shape.middle_layers);
  MicroBatchParts pace = first.total() >= last.total() ? first : last;
  if (middle.total() > pace.total()) pace = middle;
  return pace;
}

// One activation of T x h, split over tp (SP, or the 2021 scatter/gather,
// which rebuilds it with an NVLink all-gather), each way per chunk per
// micro-batch. Blocking sends sit on the critical path; asynchronous ones
// hide behind the chunk's compute.
PipelineTransfers pipeline_transfers(const ClusterSpec& cluster, const Layout& layout, const MicroBatchDims& d,
                                     const CommGroups& groups, double chunk_compute_s) {
  const SoftwareStack& sw = layout.software;
  const double T = d.tokens, h = d.hidden, tp = d.tp, vp = d.vp;
  PipelineTransfers t;
  if (layout.pp > 1) {
    t.hop_s = p2p_time_s(cluster, groups.pp_inside_node, T * h * kBf16 / tp);
    if (!sw.sequence_parallel && layout.tp > 1) t.hop_s += all_gather_time_s(cluster, groups.tp, T * h * kBf16);
  }
  t.per_micro_batch_s = sw.overlap_pp ? 2 * vp * std::max(0.0, t.hop_s - chunk_compute_s) : 2 * vp * t.hop_s;
  return t;
}

// ZeRO 0: all-reduce the main grads once per step. ZeRO 1 (distributed
// optimizer): reduce-scatter them once, all-gather the updated bf16 weights.
// ZeRO 2/3 keep no full gradient, so every micro-batch's gradients are
// reduce-scattered; ZeRO 3 also gathers the weights for each micro-batch's
// forward and backward.
DataParallelTraffic data_parallel_traffic(const ClusterSpec& cluster, const Layout& layout, const CommGroups& groups,
                                          const ParameterShare& params, int64_t micro_batches) {
  const double m = static_cast<double>(micro_batches);
  DataParallelTraffic t;
  t.reduce_count = layout.zero >= 2 ? m : 1;
  t.gather_count = layout.zero == 3 ? 2 * m : 1;
  auto times = [&](const Group& group, double parameters) {
    const double grads = parameters * layout.software.main_grad_bytes, weights = parameters * kBf16;
    if (layout.zero == 0) return std::pair{all_reduce_time_s(cluster, group, grads), 0.0};
    return std::pair{reduce_scatter_time_s(cluster, group, grads) * t.reduce_count,
                     all_gather_time_s(cluster, group, weights) * t.gather_count};
  };
  const auto [dense_reduce, dense_gather] = times(groups.dense_dp, params.max_rank_dense);
  const auto [expert_reduce, expert_gather] = times(groups.expert_dp, params.max_rank_expert);
  t.reduce_s = dense_reduce + expert_reduce;
  t.gather_s = dense_gather + expert_gather;
  return t;
}

double exposed_data_parallel_s(const DataParallelTraffic& t, bool overlap, double chunk_compute_s, double vp,
                               int64_t micro_batches) {
  if (!overlap) return t.reduce_s + t.gather_s;
  const double m = static_cast<double>(micro_batches), chunk_compute = chunk_compute_s;
  const double backward_s = m * chunk_compute * vp * 2 / 3, forward_s = m * chunk_compute * vp / 3;
  const double backward_chunk = chunk_compute * 2 / 3, forward_chunk = chunk_compute / 3;
  // What runs beside compute: all but the last chunk-micro-batch's share.
  const double last_share = 1 / (vp * t.reduce_count), last_gather_share = 1 / (vp * t.gather_count);
  return std::max(0.0, t.reduce_s * last_share - backward_chunk) +
         std::max(0.0, t.reduce_s * (1 - last_share) - backward_s) +
         std::max(0.0, t.gather_s * last_gather_share - forward_chunk) +
         std::max(0.0, t.gather_s * (1 - last_gather_share) - forward_s);
}

double optimizer_step_s(const GpuSpec& gpu, const Layout& layout, const CommGroups& groups,
                        const ParameterShare& params) {
  const double shard = layout.zero >= 1 ? 1.0 / static_cast<double>(groups.dense_dp.n) : 1.0;
  const double ep = static_cast<double>(layout.ep);
  return stream_time_s(gpu, 32 * (params.max_rank_dense + params.max_rank_expert * ep) * shard);
}

// Compute and communication inside a micro-batch are summed per micro-batch,
// then times the number of micro-batches.
StepBreakdown step_breakdown(const ClusterSpec& cluster, const Layout& layout, const MicroBatchDims& d,
                             const CommGroups& groups, const PipelineShape& shape, const ParameterShare& params,
                             const StageWork& work, int64_t micro_batches) {
  const SoftwareStack& sw = layout.software;
  const double m = static_cast<double>(micro_batches);
  const MicroBatchParts pace = pipeline_pace(work, shape);
  const double chunk_compute_s = pace.total() / d.vp;
  const PipelineTransfers pp = pipeline_transfers(cluster, layout, d, groups, chunk_compute_s);
  StepBreakdown st;
  st.gemm_s = m * pace.gemm;
  st.attention_s = m * pace.attention;
  st.elementwise_s = m * pace.elementwise;
  st.grad_accum_s = m * pace.grad_accum;
  st.tp_comm_s = m * pace.tp;
  st.ep_comm_s = m * pace.ep;
  st.cp_comm_s = m * pace.cp;
  st.pp_comm_s = m * pp.per_micro_batch_s;
  const double micro_batch_s = pace.total() + pp.per_micro_batch_s;
  st.bubble_s = pipeline_overhead_s(layout.pp, layout.vp, micro_batches, micro_batch_s, pp.hop_s, sw.overlap_pp);
  const DataParallelTraffic dp = data_parallel_traffic(cluster, layout, groups, params, micro_batches);
  st.dp_comm_s = exposed_data_parallel_s(dp, sw.overlap_dp, chunk_compute_s, d.vp, micro_batches);
  st.optimizer_s = optimizer_step_s(cluster.gpu, layout, groups, params);
  st.step_s = m * micro_batch_s + st.bubble_s + st.dp_comm_s + st.optimizer_s;
  return st;
}

}  // namespace sc::plan
