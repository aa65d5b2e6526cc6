#include "plan/reliability.h"

#include <gtest/gtest.h>

#include <cmath>

namespace sc::plan {
namespace {

// 1,024 of a 2,048-GPU cluster's GPUs train a 100B-parameter model for 10
// days of compute; one GPU cause and one node cause of interruptions.
struct Case {
  ClusterSpec cluster;
  Plan plan;
};

Case one_case() {
  Case c;
  c.cluster = *cluster_preset("dgx-h100");
  c.cluster.num_gpus = 2048;
  c.cluster.failures = {{"gpu", "gpu", 2e-5}, {"host", "node", 1e-4}};
  c.cluster.storage_write_bytes_per_s = 1e12;
  c.cluster.restart_s = 600;
  c.cluster.gpu_hour_usd = 3;
  c.plan.num_gpus = 1024;
  c.plan.total_parameters = 100e9;
  c.plan.days = 10;
  return c;
}

TEST(PlanReliability, InterruptionsCheckpointsAndGoodputFollowYoungDaly) {
  Case c = one_case();
  add_reliability_and_power(c.cluster, &c.plan);
  const Reliability& r = c.plan.reliability;
  const double per_hour = 2e-5 * 1024 + 1e-4 * (1024 / 8);  // the job's GPUs and their nodes
  EXPECT_NEAR(r.interruptions_per_day, per_hour * 24, 1e-12);
  EXPECT_NEAR(r.job_mtbf_s, 3600 / per_hour, 1e-9);
  EXPECT_DOUBLE_EQ(r.checkpoint_bytes, 100e9 * (2 + 12));  // bf16 weights + fp32 master, m, v
  EXPECT_DOUBLE_EQ(r.checkpoint_write_s, 1.4);
  // Young's first-order interval sqrt(2 delta M), which Daly refines by well
  // under a percent when the write is this short against the MTBF.
  const double young = std::sqrt(2 * 1.4 * r.job_mtbf_s);
  EXPECT_NEAR(r.checkpoint_interval_s / young, 1, 0.01);
  // Lost: the writes, and per interruption a restart and half an interval redone.
  const double tau = r.checkpoint_interval_s, delta = r.checkpoint_write_s;
  const double lost = delta / (tau + delta) + (600 + (tau + delta) / 2) / r.job_mtbf_s;
  EXPECT_NEAR(r.goodput, 1 - lost, 1e-12);
  EXPECT_NEAR(c.plan.effective_days, 10 / r.goodput, 1e-9);
  EXPECT_NEAR(r.expected_interruptions, r.interruptions_per_day * c.plan.effective_days, 1e-9);
  // Daly's interval is the one that loses least: nearby intervals lose more.
  auto lost_at = [&](double t) { return delta / (t + delta) + (600 + (t + delta) / 2) / r.job_mtbf_s; };
  EXPECT_LT(lost_at(tau), lost_at(0.9 * tau));
  EXPECT_LT(lost_at(tau), lost_at(1.1 * tau));
}

TEST(PlanReliability, WithoutFailuresOnlyCheckpointWritesAreLost) {
  Case c = one_case();
  c.cluster.failures.clear();
  add_reliability_and_power(c.cluster, &c.plan);
  EXPECT_EQ(c.plan.reliability.interruptions_per_day, 0);
  EXPECT_GT(c.plan.reliability.goodput, 0.999);
  EXPECT_NEAR(c.plan.effective_days, 10, 0.01);
}

TEST(PlanReliability, HopelessFailureRatesStopAtOnePercentGoodput) {
  Case c = one_case();
  c.cluster.failures = {{"everything", "gpu", 1.0}};  // each GPU fails hourly
  add_reliability_and_power(c.cluster, &c.plan);
  EXPECT_NEAR(c.plan.reliability.goodput, 0.01, 1e-12);
}

TEST(PlanReliability, PowerCountsEveryInstalledGpuAndCostTheJobsGpuHours) {
  Case c = one_case();
  add_reliability_and_power(c.cluster, &c.plan);
  const Plan& p = c.plan;
  const double nodes = 2048 / 8;  // the idle half of the cluster stays powered
  EXPECT_NEAR(p.power.gpus_mw, nodes * 8 * c.cluster.gpu.tdp_w / 1e6, 1e-12);
  EXPECT_NEAR(p.power.node_rest_mw, nodes * c.cluster.node_power_beyond_gpus_w / 1e6, 1e-12);
  const double nodes_mw = p.power.gpus_mw + p.power.node_rest_mw;
  EXPECT_NEAR(p.it_power_mw, nodes_mw * (1 + c.cluster.network_storage_power_fraction), 1e-12);
  EXPECT_NEAR(p.facility_power_mw, p.it_power_mw * c.cluster.pue, 1e-12);
  EXPECT_NEAR(p.power.gpus_mw + p.power.node_rest_mw + p.power.network_storage_mw + p.power.cooling_mw,
              p.facility_power_mw, 1e-12);
  EXPECT_NEAR(p.energy_mwh, p.facility_power_mw * p.effective_days * 24, 1e-9);
  EXPECT_NEAR(p.gpu_hours, 1024 * p.effective_days * 24, 1e-6);  // the job's GPUs, not the idle ones
  EXPECT_NEAR(p.cost_usd, p.gpu_hours * 3, 1e-6);
}

}  // namespace
}  // namespace sc::plan
