#include "plan/calibrate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>

#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/peak.h"
#include "plan/collectives.h"
#include "plan/kernel_model.h"

namespace sc::plan {
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

std::vector<GemmCalibrationPoint> measure_gemm(ThreadPool& pool, double peak_gflops, const GpuSpec& gpu) {
  std::vector<GemmCalibrationPoint> points;
  for (size_t n : {64, 128, 256, 512, 1024, 2048}) {
    const auto x = random_floats(n * n, 1), w = random_floats(n * n, 2);
    std::vector<float> out(n * n);
    const double t = best_time_s([&] { matmul_forward(pool, out.data(), x.data(), w.data(), n, n, n, false); }, 0.15);
    const double gflops = 2.0 * n * n * n / t / 1e9;
    const double side = static_cast<double>(n) * 8;
    points.push_back({n, gflops, gflops / peak_gflops, side, gemm_efficiency(gpu, side, side, side)});
  }
  return points;
}

std::vector<AttentionCalibrationPoint> measure_attention(ThreadPool& pool, double peak_gflops) {
  std::vector<AttentionCalibrationPoint> points;
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

// Runs the 2-rank worker command and reads rank 0's lines.
Result<std::vector<AllReduceCalibrationPoint>> measure_allreduce(const std::string& worker_command) {
  const std::string command = worker_command + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return Status::invalid("--calibrate: could not start mpirun");
  std::string output;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  const int rc = ::pclose(pipe);
  std::vector<AllReduceCalibrationPoint> points = parse_allreduce_timing_lines(output);
  if (points.empty())
    return Status::invalid("--calibrate: mpirun -np 2 gave no all-reduce timings (exit {}): {}", rc,
                           output.substr(0, 400));
  return points;
}

}  // namespace

std::vector<size_t> allreduce_calibration_sizes_bytes() {
  return {size_t{4} << 10, size_t{64} << 10, size_t{1} << 20, size_t{8} << 20, size_t{32} << 20};
}

std::string allreduce_timing_line(size_t bytes, double seconds) {
  return fmt::format("allreduce {} {:.9f}", bytes, seconds);
}

std::vector<AllReduceCalibrationPoint> parse_allreduce_timing_lines(const std::string& output) {
  std::vector<AllReduceCalibrationPoint> points;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    double bytes = 0, seconds = 0;
    if (std::sscanf(line.c_str(), "allreduce %lf %lf", &bytes, &seconds) == 2 && seconds > 0) {
      AllReduceCalibrationPoint p;
      p.bytes = bytes, p.seconds = seconds, p.bus_gbps = bytes / seconds / 1e9;
      points.push_back(p);
    }
  }
  return points;
}

CalibrationReport run_calibration(const ClusterSpec& cluster, const std::string& allreduce_worker_command) {
  CalibrationReport report;
  report.gpu = cluster.gpu.name;
  report.cluster = cluster.name;
  report.model_fa2_efficiency = cluster.gpu.fa2_efficiency;
  report.model_fa3_efficiency = cluster.gpu.fa3_efficiency;
  ThreadPool pool(default_thread_count());
  report.threads = pool.num_threads();
  report.matmul_peak_gflops = matmul_peak_gflops(pool);
  report.gemm = measure_gemm(pool, report.matmul_peak_gflops, cluster.gpu);
  report.attention = measure_attention(pool, report.matmul_peak_gflops);
  report.copy_gbps = measure_copy_gbps();
  // The model's NCCL bus-bandwidth curve at the same message sizes: 8 GPUs on
  // NVLink in one node, and 16 nodes on their NICs.
  const Group node_group = strided_group(cluster, cluster.gpus_per_node, 1);
  const Group nic_group = strided_group(cluster, 16, cluster.gpus_per_node);
  report.model_nvlink_gpus = node_group.n;
  report.model_nic_nodes = nic_group.n;
  auto allreduce = measure_allreduce(allreduce_worker_command);
  if (!allreduce.ok()) {
    report.allreduce_status = allreduce.status();
    return report;
  }
  report.allreduce = std::move(*allreduce);
  for (auto& p : report.allreduce) {
    p.model_nvlink_bus_gbps = all_reduce_bus_bandwidth(cluster, node_group, p.bytes) / 1e9;
    p.model_nic_bus_gbps = all_reduce_bus_bandwidth(cluster, nic_group, p.bytes) / 1e9;
  }
  return report;
}

}  // namespace sc::plan
