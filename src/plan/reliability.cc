#include "plan/reliability.h"

#include <algorithm>
#include <cmath>

namespace sc::plan {
namespace {

// A checkpoint holds the bf16 weights and the fp32 optimizer state.
constexpr double kCheckpointBytesPerParam = 2 + 12;

// Daly 2006: the checkpoint interval that loses least, for write time delta
// and mean time between interruptions M.
double daly_interval(double delta_s, double mtbf_s) {
  if (delta_s >= 2 * mtbf_s) return mtbf_s;
  const double x = delta_s / (2 * mtbf_s);
  return std::sqrt(2 * delta_s * mtbf_s) * (1 + std::sqrt(x) / 3 + x / 9) - delta_s;
}

}  // namespace

void add_reliability_and_power(const ClusterSpec& cluster, Plan* plan) {
  const GpuSpec& gpu = cluster.gpu;
  const double n = static_cast<double>(plan->num_gpus);
  Reliability& r = plan->reliability;
  double rate_per_hour = 0;
  for (const auto& cause : cluster.failures)
    rate_per_hour += cause.rate_per_hour * (cause.component == "node" ? std::ceil(n / static_cast<double>(cluster.gpus_per_node)) : n);
  r.interruptions_per_day = rate_per_hour * 24;
  r.job_mtbf_s = rate_per_hour > 0 ? 3600 / rate_per_hour : 1e30;
  r.checkpoint_bytes = plan->total_parameters * kCheckpointBytesPerParam;
  r.checkpoint_write_s = r.checkpoint_bytes / cluster.storage_write_bytes_per_s;
  r.checkpoint_interval_s = daly_interval(r.checkpoint_write_s, r.job_mtbf_s);
  // Lost per unit of wall time: writing checkpoints, and per interruption a
  // restart plus half an interval (plus its write) of redone work.
  r.lost_fraction = r.checkpoint_write_s / (r.checkpoint_interval_s + r.checkpoint_write_s) +
                    (cluster.restart_s + (r.checkpoint_interval_s + r.checkpoint_write_s) / 2) / r.job_mtbf_s;
  r.lost_fraction = std::min(r.lost_fraction, 0.99);
  r.goodput = 1 - r.lost_fraction;
  plan->effective_days = plan->days / r.goodput;
  r.expected_interruptions = r.interruptions_per_day * plan->effective_days;

  // ---- Power, energy, cost ----
  const double nodes = static_cast<double>(cluster.num_nodes());
  plan->power.gpus_mw = nodes * static_cast<double>(cluster.gpus_per_node) * gpu.tdp_w / 1e6;
  plan->power.node_rest_mw = nodes * cluster.node_power_beyond_gpus_w / 1e6;
  plan->power.network_storage_mw = (plan->power.gpus_mw + plan->power.node_rest_mw) * cluster.network_storage_power_fraction;
  plan->it_power_mw = plan->power.gpus_mw + plan->power.node_rest_mw + plan->power.network_storage_mw;
  plan->facility_power_mw = plan->it_power_mw * cluster.pue;
  plan->power.cooling_mw = plan->facility_power_mw - plan->it_power_mw;
  plan->energy_mwh = plan->facility_power_mw * plan->effective_days * 24;
  plan->gpu_hours = n * plan->effective_days * 24;
  plan->cost_usd = plan->gpu_hours * cluster.gpu_hour_usd;
}

}  // namespace sc::plan
