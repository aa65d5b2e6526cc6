// `plan --calibrate`: this machine's own kernels (the project's GEMM and
// attention, and an MPI all-reduce between 2 ranks) measured against their
// peaks, beside the efficiency curves the planner assumes for the cluster's
// GPUs and links (docs/plan.md, "--calibrate"). The command prints the
// report; the all-reduce's ranks are this program again, started by mpirun.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "plan/hardware.h"

namespace sc::plan {

struct GemmCalibrationPoint {
  size_t n = 0;                       // side of the square fp32 GEMM measured
  double gflops = 0, efficiency = 0;  // measured, and as a fraction of the measured sgemm peak
  // The model's curve where a GPU's own knee is: squares 8x larger (a GPU
  // has far more parallel units than these cores, so its curve rises later).
  double model_gpu_side = 0, model_gpu_efficiency = 0;
};

struct AttentionCalibrationPoint {
  size_t seq_len = 0;
  double gflops = 0, efficiency = 0;  // of the same sgemm peak
};

struct AllReduceCalibrationPoint {
  double bytes = 0, seconds = 0;
  double bus_gbps = 0;  // 2 ranks: bus bandwidth = algorithm bandwidth x 2(n-1)/n = bytes / time
  // The model's NCCL bus bandwidth at the same size: one node's GPUs on
  // NVLink, and 16 nodes on their NICs.
  double model_nvlink_bus_gbps = 0, model_nic_bus_gbps = 0;
};

struct CalibrationReport {
  std::string gpu, cluster;  // whose curves are beside the measurements
  size_t threads = 0;        // of this machine's GEMM and attention
  double matmul_peak_gflops = 0;
  std::vector<GemmCalibrationPoint> gemm;
  std::vector<AttentionCalibrationPoint> attention;
  double model_fa2_efficiency = 0, model_fa3_efficiency = 0;  // the GPU's fused attention, of its peak
  double copy_gbps = 0;  // single-core streaming copy: the ceiling of a shared-memory all-reduce here
  int64_t model_nvlink_gpus = 0, model_nic_nodes = 0;  // the model groups of the all-reduce points
  std::vector<AllReduceCalibrationPoint> allreduce;
  Status allreduce_status;  // why `allreduce` is empty, when it is
};

// Takes a few seconds. `allreduce_worker_command`: a shell command that runs
// the all-reduce worker on 2 ranks (`mpirun -np 2 ...`), whose output holds
// allreduce_timing_line()s; the CLI knows how to start it.
CalibrationReport run_calibration(const ClusterSpec& cluster, const std::string& allreduce_worker_command);

// The all-reduce worker's side of the protocol: the sizes it times, and one
// "allreduce <bytes> <seconds>" line per size on rank 0's stdout.
std::vector<size_t> allreduce_calibration_sizes_bytes();
std::string allreduce_timing_line(size_t bytes, double seconds);
// The points in the worker's output (other lines ignored), without the
// model's values.
std::vector<AllReduceCalibrationPoint> parse_allreduce_timing_lines(const std::string& output);

}  // namespace sc::plan
