#include "cli/plan_calibrate.h"

#include <fmt/format.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/executable_path.h"
#include "dist/allreduce_timing.h"
#include "dist/communicator.h"
#include "plan/calibrate.h"

namespace sc::cli {
namespace {

void print_json(const plan::CalibrationReport& r) {
  nlohmann::json out;
  out["matmul_peak_gflops"] = r.matmul_peak_gflops;
  for (const auto& p : r.gemm)
    out["gemm"].push_back({{"n", p.n}, {"gflops", p.gflops}, {"efficiency", p.efficiency},
                           {"model_gpu_side", p.model_gpu_side}, {"model_gpu_efficiency", p.model_gpu_efficiency}});
  for (const auto& p : r.attention)
    out["attention"].push_back({{"seq_len", p.seq_len}, {"gflops", p.gflops}, {"efficiency", p.efficiency}});
  out["copy_gbps"] = r.copy_gbps;
  if (r.allreduce_status.ok()) {
    for (const auto& p : r.allreduce)
      out["allreduce"].push_back({{"bytes", p.bytes}, {"seconds", p.seconds}, {"bus_gbps", p.bus_gbps},
                                  {"model_nvlink_bus_gbps", p.model_nvlink_bus_gbps},
                                  {"model_nic_bus_gbps", p.model_nic_bus_gbps}});
  } else {
    out["allreduce_error"] = r.allreduce_status.message();
  }
  out["gpu"] = r.gpu;
  fmt::print("{}\n", out.dump(2));
}

void print_text(const plan::CalibrationReport& r) {
  fmt::print("calibrate: this machine's kernels against their peaks, beside the planner's curves for {} ({})\n\n",
             r.gpu, r.cluster);
  fmt::print("GEMM: the project's matmul_forward (fp32, {} threads); peak = measured sgemm peak {:.0f} GFLOP/s\n",
             r.threads, r.matmul_peak_gflops);
  fmt::print("  {:>6} {:>10} {:>11}   | model: {} bf16 square GEMM {:>7} {:>8}\n", "n", "GFLOP/s", "of peak", r.gpu,
             "side", "of peak");
  for (const auto& p : r.gemm)
    fmt::print("  {:>6} {:>10.1f} {:>10.1f}%   | {:>34.0f} {:>7.1f}%\n", p.n, p.gflops, 100 * p.efficiency,
               p.model_gpu_side, 100 * p.model_gpu_efficiency);
  fmt::print("  The shape of both curves is the same physics: small GEMMs lose to fixed per-call costs and\n"
             "  partial tiles; large ones approach a ceiling below the datasheet peak.\n\n");
  fmt::print("Attention: the project's causal attention_forward (8 query heads, 2 KV heads, head dim 64)\n");
  for (const auto& p : r.attention)
    fmt::print("  T={:<5} {:>8.1f} GFLOP/s = {:>5.1f}% of the GEMM peak\n", p.seq_len, p.gflops, 100 * p.efficiency);
  fmt::print("  model: fused attention at {:.0f}% (FlashAttention-2) / {:.0f}% (FlashAttention-3) of {} peak\n\n",
             100 * r.model_fa2_efficiency, 100 * r.model_fa3_efficiency, r.gpu);
  fmt::print("All-reduce: MPI, 2 ranks on this machine (shared memory); bus bandwidth = bytes / time for 2 ranks;\n"
             "  peak here = single-core streaming copy, {:.1f} GB/s\n",
             r.copy_gbps);
  if (!r.allreduce_status.ok()) {
    fmt::print("  not measured: {}\n", r.allreduce_status.message());
    return;
  }
  fmt::print("  {:>10} {:>10} {:>9} {:>8}   | model busbw GB/s: {} x NVLink  {} nodes on NICs\n", "bytes", "time us",
             "bus GB/s", "of peak", r.model_nvlink_gpus, r.model_nic_nodes);
  for (const auto& p : r.allreduce)
    fmt::print("  {:>10.0f} {:>10.1f} {:>9.2f} {:>7.1f}%   | {:>14.1f} {:>14.1f}\n", p.bytes, 1e6 * p.seconds,
               p.bus_gbps, 100 * p.bus_gbps / r.copy_gbps, p.model_nvlink_bus_gbps, p.model_nic_bus_gbps);
  fmt::print("  Both rise with message size as the fixed per-step latency is amortized (docs/plan.md).\n");
}

}  // namespace

Status run_plan_calibrate(const plan::ClusterSpec& cluster, bool json) {
  SC_ASSIGN_OR_RETURN(const std::string exe, executable_path());
  // This program as 2 ranks, on shared memory only, as the project's MPI tests run.
  const std::string worker = fmt::format(
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 mpirun -np 2 --oversubscribe "
      "--mca btl self,vader '{}' plan --calibrate-allreduce-worker",
      exe);
  const plan::CalibrationReport report = plan::run_calibration(cluster, worker);
  if (json) {
    print_json(report);
  } else {
    print_text(report);
  }
  return Status();
}

Status run_allreduce_calibration_worker() {
  CommunicatorOptions options;
  options.backend = CommunicatorOptions::Backend::kMpi;
  options.deterministic = false;  // MPI's own all-reduce: what a library would use
  SC_ASSIGN_OR_RETURN(auto comm, make_communicator(options));
  auto print = [&](const AllReduceTiming& t) {
    if (comm->rank() == 0) fmt::print("{}\n", plan::allreduce_timing_line(t.bytes, t.best_s));
    std::fflush(stdout);
  };
  const std::vector<size_t> sizes = plan::allreduce_calibration_sizes_bytes();
  return time_all_reduce(*comm, sizes, {}, print).status();
}

}  // namespace sc::cli
