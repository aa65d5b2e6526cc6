#include "cli/plan_calibrate.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "dist/communicator.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/peak.h"
#include "plan/collectives.h"
#include "plan/kernel_model.h"

namespace sc::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Best time of `fn` over repeats lasting at least `budget_s` (and 2 runs):
// the machine is shared, so the best run is the closest to the kernel itself.
template <typename Fn>
double best_time_s(Fn&& fn, double budget_s) {
  double best = 1e30;
  const auto start = Clock::now();
  for (int i = 0; i < 50 && (i < 2 || seconds_since(start) < budget_s); ++i) {
    const auto t0 = Clock::now();
    fn();
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

struct GemmPoint {
  size_t n;
  double gflops, efficiency;
  double model_side, model_efficiency;  // the model's curve at GPU-sized squares
};

std::vector<GemmPoint> measure_gemm(ThreadPool& pool, double peak_gflops, const plan::GpuSpec& gpu) {
  std::vector<GemmPoint> points;
  for (size_t n : {64, 128, 256, 512, 1024, 2048}) {
    const auto x = random_floats(n * n, 1), w = random_floats(n * n, 2);
    std::vector<float> out(n * n);
    const double t = best_time_s([&] { matmul_forward(pool, out.data(), x.data(), w.data(), n, n, n, false); }, 0.15);
    const double gflops = 2.0 * n * n * n / t / 1e9;
    // The model's curve where a GPU's own knee is: squares 8x larger (a GPU
    // has far more parallel units than these cores, so its curve rises later).
    const double side = static_cast<double>(n) * 8;
    points.push_back({n, gflops, gflops / peak_gflops, side, plan::gemm_efficiency(gpu, side, side, side)});
  }
  return points;
}

struct AttentionPoint {
  size_t seq;
  double gflops, efficiency;
};

std::vector<AttentionPoint> measure_attention(ThreadPool& pool, double peak_gflops) {
  std::vector<AttentionPoint> points;
  for (size_t T : {256, 1024}) {
    AttentionShape shape;
    shape.B = 1, shape.T = T, shape.Hq = 8, shape.Hkv = 2, shape.D = 64;
    shape.multiplier = 0.125f;
    const size_t N = shape.B * T;
    const auto q = random_floats(N * shape.Hq * shape.D, 3), k = random_floats(N * shape.Hkv * shape.D, 4),
               v = random_floats(N * shape.Hkv * shape.D, 5);
    std::vector<float> out(N * shape.Hq * shape.D), lse(shape.B * shape.Hq * T),
        scratch(attention_scratch_floats(T, pool.num_threads()));
    const double t = best_time_s(
        [&] { attention_forward(pool, out.data(), lse.data(), q.data(), k.data(), v.data(), shape, scratch.data()); },
        0.15);
    // Causal: QK^T and PV over the lower triangle, 2 x 2 x T^2/2 x Hq x D.
    const double flops = 2.0 * static_cast<double>(T) * T * shape.Hq * shape.D;
    points.push_back({T, flops / t / 1e9, flops / t / 1e9 / peak_gflops});
  }
  return points;
}

// Single-core streaming copy: the ceiling a shared-memory all-reduce between
// two processes on this machine works against.
double measure_copy_gbps() {
  const size_t bytes = size_t{64} << 20;
  std::vector<char> a(bytes, 1), b(bytes, 0);
  const double t = best_time_s([&] { std::memcpy(b.data(), a.data(), bytes); }, 0.1);
  return 2.0 * static_cast<double>(bytes) / t / 1e9;  // read + write
}

struct AllReducePoint {
  double bytes, seconds, bus_gbps;
};

// Runs this binary under mpirun as 2 ranks (shared memory only, as the
// project's MPI tests do) and reads rank 0's lines.
Result<std::vector<AllReducePoint>> measure_allreduce() {
  char exe[4096];
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (len <= 0) return Status::invalid("--calibrate: cannot find this program's path (/proc/self/exe)");
  exe[len] = '\0';
  const std::string command = fmt::format(
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 mpirun -np 2 --oversubscribe "
      "--mca btl self,vader '{}' plan --calibrate-allreduce-worker 2>&1",
      exe);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return Status::invalid("--calibrate: could not start mpirun");
  std::string output;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  const int rc = ::pclose(pipe);
  std::vector<AllReducePoint> points;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    double bytes = 0, seconds = 0;
    if (std::sscanf(line.c_str(), "allreduce %lf %lf", &bytes, &seconds) == 2 && seconds > 0)
      points.push_back({bytes, seconds, bytes / seconds / 1e9});  // 2 ranks: busbw = algbw x 2(n-1)/n = algbw
  }
  if (points.empty())
    return Status::invalid("--calibrate: mpirun -np 2 gave no all-reduce timings (exit {}): {}", rc,
                           output.substr(0, 400));
  return points;
}

}  // namespace

Status run_allreduce_calibration_worker() {
  CommunicatorOptions options;
  options.backend = CommunicatorOptions::Backend::kMpi;
  options.deterministic = false;  // MPI's own all-reduce: what a library would use
  SC_ASSIGN_OR_RETURN(auto comm, make_communicator(options));
  const CollectiveTimeout timeout{20000};
  for (size_t bytes : {size_t{4} << 10, size_t{64} << 10, size_t{1} << 20, size_t{8} << 20, size_t{32} << 20}) {
    std::vector<float> data(bytes / sizeof(float), 1.0f);
    SC_RETURN_IF_ERROR(comm->all_reduce(data, timeout));  // warm-up
    double best = 1e30;
    const auto start = Clock::now();
    for (int i = 0; i < 20 && (i < 3 || seconds_since(start) < 0.2); ++i) {
      SC_RETURN_IF_ERROR(comm->barrier(timeout));
      const auto t0 = Clock::now();
      SC_RETURN_IF_ERROR(comm->all_reduce(data, timeout));
      best = std::min(best, seconds_since(t0));
    }
    if (comm->rank() == 0) fmt::print("allreduce {} {:.9f}\n", bytes, best);
    std::fflush(stdout);
  }
  return comm->barrier(timeout);
}

Status run_plan_calibrate(const plan::ClusterSpec& cluster, bool json) {
  ThreadPool pool(default_thread_count());
  const double peak_gflops = matmul_peak_gflops(pool);
  const auto gemm = measure_gemm(pool, peak_gflops, cluster.gpu);
  const auto attention = measure_attention(pool, peak_gflops);
  const double copy_gbps = measure_copy_gbps();
  auto allreduce = measure_allreduce();
  // The model's NCCL bus-bandwidth curve at the same message sizes: 8 GPUs on
  // NVLink in one node, and 16 nodes on their NICs.
  const plan::Group node_group = plan::strided_group(cluster, cluster.gpus_per_node, 1);
  const plan::Group nic_group = plan::strided_group(cluster, 16, cluster.gpus_per_node);
  auto model_busbw = [&](const plan::Group& g, double bytes) {
    return plan::all_reduce_bus_bandwidth(cluster, g, bytes) / 1e9;
  };

  if (json) {
    nlohmann::json out;
    out["matmul_peak_gflops"] = peak_gflops;
    for (const auto& p : gemm)
      out["gemm"].push_back({{"n", p.n}, {"gflops", p.gflops}, {"efficiency", p.efficiency},
                             {"model_gpu_side", p.model_side}, {"model_gpu_efficiency", p.model_efficiency}});
    for (const auto& p : attention)
      out["attention"].push_back({{"seq_len", p.seq}, {"gflops", p.gflops}, {"efficiency", p.efficiency}});
    out["copy_gbps"] = copy_gbps;
    if (allreduce.ok()) {
      for (const auto& p : *allreduce)
        out["allreduce"].push_back({{"bytes", p.bytes}, {"seconds", p.seconds}, {"bus_gbps", p.bus_gbps},
                                    {"model_nvlink_bus_gbps", model_busbw(node_group, p.bytes)},
                                    {"model_nic_bus_gbps", model_busbw(nic_group, p.bytes)}});
    } else {
      out["allreduce_error"] = allreduce.status().message();
    }
    out["gpu"] = cluster.gpu.name;
    fmt::print("{}\n", out.dump(2));
    return Status();
  }
  fmt::print("calibrate: this machine's kernels against their peaks, beside the planner's curves for {} ({})\n\n",
             cluster.gpu.name, cluster.name);
  fmt::print("GEMM: the project's matmul_forward (fp32, {} threads); peak = measured sgemm peak {:.0f} GFLOP/s\n",
             pool.num_threads(), peak_gflops);
  fmt::print("  {:>6} {:>10} {:>11}   | model: {} bf16 square GEMM {:>7} {:>8}\n", "n", "GFLOP/s", "of peak",
             cluster.gpu.name, "side", "of peak");
  for (const auto& p : gemm)
    fmt::print("  {:>6} {:>10.1f} {:>10.1f}%   | {:>34.0f} {:>7.1f}%\n", p.n, p.gflops, 100 * p.efficiency, p.model_side,
               100 * p.model_efficiency);
  fmt::print("  The shape of both curves is the same physics: small GEMMs lose to fixed per-call costs and\n"
             "  partial tiles; large ones approach a ceiling below the datasheet peak.\n\n");
  fmt::print("Attention: the project's causal attention_forward (8 query heads, 2 KV heads, head dim 64)\n");
  for (const auto& p : attention)
    fmt::print("  T={:<5} {:>8.1f} GFLOP/s = {:>5.1f}% of the GEMM peak\n", p.seq, p.gflops, 100 * p.efficiency);
  fmt::print("  model: fused attention at {:.0f}% (FlashAttention-2) / {:.0f}% (FlashAttention-3) of {} peak\n\n",
             100 * cluster.gpu.fa2_efficiency, 100 * cluster.gpu.fa3_efficiency, cluster.gpu.name);
  fmt::print("All-reduce: MPI, 2 ranks on this machine (shared memory); bus bandwidth = bytes / time for 2 ranks;\n"
             "  peak here = single-core streaming copy, {:.1f} GB/s\n",
             copy_gbps);
  if (!allreduce.ok()) {
    fmt::print("  not measured: {}\n", allreduce.status().message());
    return Status();
  }
  fmt::print("  {:>10} {:>10} {:>9} {:>8}   | model busbw GB/s: {} x NVLink  {} nodes on NICs\n", "bytes", "time us",
             "bus GB/s", "of peak", node_group.n, nic_group.n);
  for (const auto& p : *allreduce)
    fmt::print("  {:>10.0f} {:>10.1f} {:>9.2f} {:>7.1f}%   | {:>14.1f} {:>14.1f}\n", p.bytes, 1e6 * p.seconds,
               p.bus_gbps, 100 * p.bus_gbps / copy_gbps, model_busbw(node_group, p.bytes),
               model_busbw(nic_group, p.bytes));
  fmt::print("  Both rise with message size as the fixed per-step latency is amortized (docs/plan.md).\n");
  return Status();
}

}  // namespace sc::cli
