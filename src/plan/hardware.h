// What the planner knows about machines: a catalog of GPUs (datasheet
// peaks), cluster descriptions (nodes, fabric, power, storage, failure
// rates) as presets or JSON files. Every figure and its source is in
// docs/plan.md; nothing here is fitted to a training run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace sc::plan {

struct GpuSpec {
  std::string name;
  double bf16_flops = 0;             // dense peak, FLOP/s (no sparsity)
  double fp8_flops = 0;              // dense peak, FLOP/s; 0 if none
  double hbm_bytes = 0;              // usable device memory
  double hbm_bytes_per_s = 0;        // memory bandwidth
  double nvlink_bytes_per_s = 0;     // scale-up bandwidth per GPU, one direction
  double tdp_w = 0;
  int64_t sm_count = 0;              // streaming multiprocessors: waves of GEMM tiles
  // Fraction of the dense peak the best-shaped bf16 GEMM sustains while the
  // GPU sits at its power limit, as it does through a training run (Maximum
  // Sustainable Matmul FLOPS with every GPU of the node busy; where no such
  // measurement is published, the burst figure, Maximum Achievable Matmul
  // FLOPS). Measured independently of any training run; docs/plan.md.
  double gemm_efficiency = 0;
  // Fraction of peak fused attention reaches, forward and backward together,
  // with FlashAttention-2 and with FlashAttention-3 (0: not available).
  double fa2_efficiency = 0;
  double fa3_efficiency = 0;
};

// One cause of unexpected job interruptions, as a rate per component-hour.
struct FailureCause {
  std::string name;
  std::string component;     // "gpu" or "node": what the rate scales with
  double rate_per_hour = 0;  // interruptions per component per hour
};

struct ClusterSpec {
  std::string name;
  GpuSpec gpu;
  int64_t num_gpus = 0;
  int64_t gpus_per_node = 8;
  int64_t gpus_per_rack = 32;
  double scale_out_bytes_per_s = 50e9;   // per GPU, one direction (400 Gb/s = 50 GB/s)
  double scale_out_efficiency = 0.8;     // achieved bus bandwidth / link rate (nccl-tests)
  double nvlink_efficiency = 0.8;        // achieved bus bandwidth / NVLink rate (nccl-tests)
  int64_t fabric_tiers = 3;
  // GPUs inside which the fabric is non-blocking (0: the whole cluster);
  // a collective spanning more pays `oversubscription`.
  int64_t pod_gpus = 0;
  double oversubscription = 1.0;
  double hop_latency_s = 1e-6;           // per switch hop, scale-out
  double nvlink_latency_s = 2e-6;        // per NCCL step inside a node (launch + sync)
  double node_power_beyond_gpus_w = 0;   // CPUs, memory, NICs, NVSwitch, fans or pumps, per node
  double network_storage_power_fraction = 0.05;  // switches and storage, as a fraction of node power
  std::string cooling = "liquid";        // "liquid" or "air"
  double pue = 1.15;                     // facility power / IT power
  double gpu_hour_usd = 2.0;
  double storage_write_bytes_per_s = 2e12;  // aggregate checkpoint write bandwidth
  double restart_s = 600;                // detect, reschedule and reload after an interruption
  // Spread of speed between identical GPUs of a cluster ((max - min) /
  // median, Sinha et al. 2022: 8% on average): a synchronous job runs at the
  // pace of its slowest GPU.
  double gpu_speed_variation = 0.08;
  std::vector<FailureCause> failures;

  int64_t num_nodes() const { return num_gpus / gpus_per_node + (num_gpus % gpus_per_node != 0 ? 1 : 0); }
  // Speed of the slowest of `gpus` GPUs relative to the median one.
  double slowest_gpu_factor(int64_t gpus) const;
  nlohmann::json to_json() const;
};

Result<GpuSpec> gpu_by_name(const std::string& name);
std::vector<std::string> gpu_names();

// Unexpected interruptions per component-hour from The Llama 3 Herd of Models
// (2024), Table 5: 419 in 54 days on 16,384 H100 (2,048 nodes), by cause.
std::vector<FailureCause> llama3_failure_rates();

Result<ClusterSpec> cluster_preset(const std::string& name);
std::vector<std::string> cluster_preset_names();
// A cluster JSON object. "base" (a preset) supplies defaults; "gpu" names a
// catalog entry; every other key overrides one field. Errors name the field.
Result<ClusterSpec> cluster_from_json(const nlohmann::json& json, const std::string& source);
// A preset name, or a path to a cluster .json file.
Result<ClusterSpec> resolve_cluster(const std::string& preset_or_path);

}  // namespace sc::plan
