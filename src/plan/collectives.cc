#include "plan/collectives.h"

#include <algorithm>
#include <cmath>

namespace sc::plan {
namespace {

// NIC and NCCL software time per ring step across nodes, on top of the switch
// hops (NCCL's own tuning model uses a few microseconds per step).
constexpr double kNicStepLatencyS = 5e-6;

struct Links {
  double nvlink_bytes_per_s, nvlink_latency_s;
  double scale_out_bytes_per_s, scale_out_latency_s;
};

// `ring`: each rank sends to one neighbour, so a ring ordered by topology
// leaves a pod once however many members it has there; an all-to-all sends
// most of its bytes out of the pod.
Links links_for(const ClusterSpec& c, const Group& g, bool ring) {
  Links l;
  l.nvlink_bytes_per_s = c.gpu.nvlink_bytes_per_s * c.nvlink_efficiency;
  l.nvlink_latency_s = c.nvlink_latency_s;
  double bw = c.scale_out_bytes_per_s * c.scale_out_efficiency;
  if (c.pod_gpus > 0 && g.span_gpus > c.pod_gpus && c.oversubscription > 1) {
    // The pod's uplinks carry pod_gpus / oversubscription NICs' worth. Rings:
    // one flow out per ring, and pod_gpus / (ring members in the pod) rings
    // share the pod. All-to-all: every flow leaves the pod.
    const double nodes = static_cast<double>(g.n) / static_cast<double>(std::max<int64_t>(1, g.in_node));
    const double ring_members_in_pod = nodes * static_cast<double>(c.pod_gpus) / static_cast<double>(g.span_gpus);
    const double share = ring ? ring_members_in_pod / c.oversubscription : 1.0 / c.oversubscription;
    bw *= std::min(1.0, share);
  }
  l.scale_out_bytes_per_s = bw;
  // A hop up and down each tier the group spans: the leaf only inside a
  // rack-sized span, else every tier.
  const int64_t tiers = g.span_gpus <= c.gpus_per_rack ? 1 : c.fabric_tiers;
  l.scale_out_latency_s = 2.0 * static_cast<double>(tiers) * c.hop_latency_s + kNicStepLatencyS;
  return l;
}

}  // namespace

Group strided_group(const ClusterSpec& c, int64_t n, int64_t stride) {
  Group g;
  g.n = n;
  g.in_node = stride >= c.gpus_per_node ? 1 : std::min(n, std::max<int64_t>(1, c.gpus_per_node / stride));
  g.span_gpus = n * stride;
  return g;
}

// Ring all-reduce of S bytes per rank, hierarchical when the group has ranks
// inside a node: reduce-scatter on NVLink, all-reduce of S / in_node across
// nodes on each GPU's own NIC (rail-optimized), all-gather on NVLink.
double all_reduce_time_s(const ClusterSpec& c, const Group& g, double bytes) {
  if (g.n <= 1 || bytes <= 0) return 0;
  const Links l = links_for(c, g, /*ring=*/true);
  const double a = static_cast<double>(std::min(g.in_node, g.n));
  const double b = static_cast<double>(g.n) / a;  // nodes in the group
  double t = 0;
  if (a > 1) t += 2 * (a - 1) / a * bytes / l.nvlink_bytes_per_s + 2 * (a - 1) * l.nvlink_latency_s;
  if (b > 1) t += 2 * (b - 1) / b * (bytes / a) / l.scale_out_bytes_per_s + 2 * (b - 1) * l.scale_out_latency_s;
  return t;
}

// Reduce-scatter and all-gather each move half of what an all-reduce moves.
double reduce_scatter_time_s(const ClusterSpec& c, const Group& g, double bytes) {
  return all_reduce_time_s(c, g, bytes) / 2;
}
double all_gather_time_s(const ClusterSpec& c, const Group& g, double bytes) {
  return all_reduce_time_s(c, g, bytes) / 2;
}

// (n-1)/n of the bytes leave the rank; the part for ranks outside the node
// goes over the NIC, in parallel with the NVLink part.
double all_to_all_time_s(const ClusterSpec& c, const Group& g, double bytes) {
  if (g.n <= 1 || bytes <= 0) return 0;
  const Links l = links_for(c, g, /*ring=*/false);
  const double n = static_cast<double>(g.n), a = static_cast<double>(std::min(g.in_node, g.n));
  const double inside = bytes * (a - 1) / n, outside = bytes * (n - a) / n;
  return std::max(inside / l.nvlink_bytes_per_s, outside / l.scale_out_bytes_per_s) +
         (a < n ? (n - 1) * l.scale_out_latency_s / 4 : (n - 1) * l.nvlink_latency_s);
}

double p2p_time_s(const ClusterSpec& c, bool inside_node, double bytes) {
  const Group g{2, inside_node ? 2 : 1, inside_node ? 2 : c.gpus_per_node * 2};
  const Links l = links_for(c, g, /*ring=*/true);
  return inside_node ? bytes / l.nvlink_bytes_per_s + l.nvlink_latency_s
                     : bytes / l.scale_out_bytes_per_s + l.scale_out_latency_s;
}

double all_reduce_bus_bandwidth(const ClusterSpec& c, const Group& g, double bytes) {
  const double t = all_reduce_time_s(c, g, bytes);
  if (t <= 0) return 0;
  const double n = static_cast<double>(g.n);
  return 2 * (n - 1) / n * bytes / t;
}

}  // namespace sc::plan
