#include "plan/collectives.h"

#include <gtest/gtest.h>

namespace sc::plan {
namespace {

TEST(PlanCollectives, RingsCrossOversubscribedPodsOnlyAtTheirEnds) {
  auto cluster = cluster_preset("llama3-h100");
  ASSERT_TRUE(cluster.ok());
  // 128 data-parallel ranks, one per 128-GPU replica, spanning 16,384 GPUs
  // over 1:7 oversubscribed pods: the ring leaves each pod once.
  const Group wide = strided_group(*cluster, 128, 128);
  const Group inside_pod = strided_group(*cluster, 16, 128);
  const double bytes = 1e9;
  const double per_member_wide = all_reduce_time_s(*cluster, wide, bytes);
  const double per_member_inside = all_reduce_time_s(*cluster, inside_pod, bytes);
  EXPECT_LT(per_member_wide, per_member_inside * 1.2);
  // An all-to-all over the same span does pay the oversubscription.
  EXPECT_GT(all_to_all_time_s(*cluster, wide, bytes), 3 * all_to_all_time_s(*cluster, inside_pod, bytes));
}

TEST(PlanCollectives, BusBandwidthRisesWithMessageSize) {
  auto cluster = cluster_preset("colossus-100k");
  ASSERT_TRUE(cluster.ok());
  const Group node = strided_group(*cluster, 8, 1);
  const double small = all_reduce_bus_bandwidth(*cluster, node, 64e3);
  const double large = all_reduce_bus_bandwidth(*cluster, node, 1e9);
  EXPECT_LT(small, large / 4);
  EXPECT_LT(large, cluster->gpu.nvlink_bytes_per_s);  // never above the link
}

TEST(PlanCollectives, StridedGroupsCountTheirRanksInANode) {
  auto cluster = cluster_preset("dgx-h100");  // 8 GPUs per node
  ASSERT_TRUE(cluster.ok());
  const Group tp = strided_group(*cluster, 8, 1);
  EXPECT_EQ(tp.in_node, 8);
  EXPECT_EQ(tp.span_gpus, 8);
  const Group pairs = strided_group(*cluster, 4, 2);  // every other GPU of one node
  EXPECT_EQ(pairs.in_node, 4);
  const Group across = strided_group(*cluster, 16, 8);  // one GPU in each of 16 nodes
  EXPECT_EQ(across.in_node, 1);
  EXPECT_EQ(across.span_gpus, 128);
  const Group wide = strided_group(*cluster, 32, 1);  // 4 full nodes
  EXPECT_EQ(wide.in_node, 8);
}

TEST(PlanCollectives, RingAllReduceMoves2NMinus1OverNOfTheBytesOverTheLink) {
  auto cluster = cluster_preset("dgx-h100");
  ASSERT_TRUE(cluster.ok());
  const double S = 256e6;
  // The bandwidth term of a ring all-reduce of S bytes over n ranks is
  // 2 (n-1)/n S / B; the difference of two sizes leaves only it.
  const Group node = strided_group(*cluster, 8, 1);
  const double nvlink = cluster->gpu.nvlink_bytes_per_s * cluster->nvlink_efficiency;
  EXPECT_NEAR(all_reduce_time_s(*cluster, node, 2 * S) - all_reduce_time_s(*cluster, node, S), 2.0 * 7 / 8 * S / nvlink,
              1e-12);
  const Group nics = strided_group(*cluster, 16, 8);
  const double nic = cluster->scale_out_bytes_per_s * cluster->scale_out_efficiency;
  EXPECT_NEAR(all_reduce_time_s(*cluster, nics, 2 * S) - all_reduce_time_s(*cluster, nics, S), 2.0 * 15 / 16 * S / nic,
              1e-12);
  // What is left is latency: 2 (n-1) steps, each at least the NVLink step.
  const double latency = all_reduce_time_s(*cluster, node, S) - 2.0 * 7 / 8 * S / nvlink;
  EXPECT_NEAR(latency, 2 * 7 * cluster->nvlink_latency_s, 1e-12);
  // Hierarchical: 2 nodes of 8 move the NIC part's bytes divided by 8.
  const Group two_nodes = strided_group(*cluster, 16, 1);
  const double nic_part = all_reduce_time_s(*cluster, two_nodes, 2 * S) - all_reduce_time_s(*cluster, two_nodes, S) -
                          2.0 * 7 / 8 * S / nvlink;
  EXPECT_NEAR(nic_part, 2.0 * 1 / 2 * (S / 8) / nic, 1e-12);
}

TEST(PlanCollectives, HalvesOneRankAndPointToPoint) {
  auto cluster = cluster_preset("dgx-h100");
  ASSERT_TRUE(cluster.ok());
  const Group node = strided_group(*cluster, 8, 1);
  const double full = all_reduce_time_s(*cluster, node, 1e8);
  EXPECT_DOUBLE_EQ(reduce_scatter_time_s(*cluster, node, 1e8), full / 2);
  EXPECT_DOUBLE_EQ(all_gather_time_s(*cluster, node, 1e8), full / 2);
  const Group alone = strided_group(*cluster, 1, 1);
  EXPECT_EQ(all_reduce_time_s(*cluster, alone, 1e8), 0);
  EXPECT_EQ(all_to_all_time_s(*cluster, alone, 1e8), 0);
  EXPECT_EQ(all_reduce_bus_bandwidth(*cluster, alone, 1e8), 0);
  const double nvlink = cluster->gpu.nvlink_bytes_per_s * cluster->nvlink_efficiency;
  EXPECT_NEAR(p2p_time_s(*cluster, true, 1e8), 1e8 / nvlink + cluster->nvlink_latency_s, 1e-12);
  // Across nodes a send goes over the NIC: slower than NVLink for big messages.
  EXPECT_GT(p2p_time_s(*cluster, false, 1e8), p2p_time_s(*cluster, true, 1e8));
  // All-to-all inside a node: (n-1)/n of the bytes leave each rank over NVLink.
  EXPECT_NEAR(all_to_all_time_s(*cluster, node, 2e8) - all_to_all_time_s(*cluster, node, 1e8), 7.0 / 8 * 1e8 / nvlink,
              1e-12);
}

}  // namespace
}  // namespace sc::plan
