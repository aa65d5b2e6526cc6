// Time of NCCL-style collectives on a cluster: ring algorithms, hierarchical
// when a group has ranks inside a node (NVLink) and across nodes (one NIC per
// GPU, rail-optimized), with a latency per ring step and bus-bandwidth
// volumes as nccl-tests counts them (doc/PERFORMANCE.md). docs/plan.md gives
// the bandwidth-versus-message-size curve this makes and its sources.
#pragma once

#include <cstdint>

#include "plan/hardware.h"

namespace sc::plan {

// `n` ranks, `in_node` of them sharing each node, spread over `span_gpus`
// consecutive GPUs of the fabric (what decides which switch tiers and pods
// the traffic crosses).
struct Group {
  int64_t n = 1;
  int64_t in_node = 1;
  int64_t span_gpus = 1;
};

// Ranks of a group with `n` members whose consecutive members are `stride`
// GPUs apart, when ranks are numbered node by node.
Group strided_group(const ClusterSpec& cluster, int64_t n, int64_t stride);

double all_reduce_time_s(const ClusterSpec& cluster, const Group& group, double bytes);
double reduce_scatter_time_s(const ClusterSpec& cluster, const Group& group, double bytes);
double all_gather_time_s(const ClusterSpec& cluster, const Group& group, double bytes);
// Each rank sends `bytes` spread evenly over the group.
double all_to_all_time_s(const ClusterSpec& cluster, const Group& group, double bytes);
double p2p_time_s(const ClusterSpec& cluster, bool inside_node, double bytes);

// nccl-tests bus bandwidth of an all-reduce of `bytes`: 2(n-1)/n * S / t.
double all_reduce_bus_bandwidth(const ClusterSpec& cluster, const Group& group, double bytes);

}  // namespace sc::plan
