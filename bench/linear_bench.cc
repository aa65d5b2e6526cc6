// linear_bench: the inference linear layer (kernels/linear.h) in each weight
// format against OpenBLAS sgemm on fp32 weights, for the row counts decode
// (1 to 32) and prefill (64, 256) use. Prints, per case, the median time of
// one call, the weight bytes it streams per second and its GFLOP/s. Asserts
// nothing (bench/README.md).
//
//   build/bench/linear_bench [--threads 2] [--n 2048] [--k 768] [--repeats 31]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/linear.h"
#include "kernels/matmul.h"

namespace {

using Clock = std::chrono::steady_clock;

template <class Fn>
double median_seconds(size_t repeats, Fn&& fn) {
  fn();  // warm
  std::vector<double> t;
  for (size_t r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"linear_bench: inference linear layers per weight format vs sgemm"};
  size_t threads = 2, N = 2048, K = 768, repeats = 31;
  app.add_option("--threads", threads);
  app.add_option("--n", N, "rows of W (outputs)");
  app.add_option("--k", K, "columns of W (inputs)");
  app.add_option("--repeats", repeats);
  CLI11_PARSE(app, argc, argv);

  sc::ThreadPool pool(threads);
  std::mt19937 gen(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // Several matrices, cycled, so one call's weights are not in cache from the
  // last (decode reads every matrix of the model once per token).
  const size_t copies = std::max<size_t>(2, (256u << 20) / (N * K * 4));
  std::vector<std::vector<float>> W(copies, std::vector<float>(N * K));
  for (auto& w : W) {
    for (float& v : w) v = 0.02f * normal(gen);
  }
  struct Packed {
    std::vector<uint8_t> data;
    std::vector<float> scales;
    sc::WeightMatrix m;
  };
  const sc::WeightFormat formats[] = {sc::WeightFormat::kF32, sc::WeightFormat::kBf16, sc::WeightFormat::kInt8};
  std::vector<std::vector<Packed>> packed(3);
  for (size_t f = 0; f < 3; ++f) {
    for (auto& w : W) {
      Packed p;
      p.data.resize(N * K * 4);
      p.scales.resize(N * sc::int8_blocks_per_row(K));
      if (!sc::pack_weight_matrix(pool, formats[f], w.data(), N, K, p.data.data(), p.scales.data(), "W").ok()) return 1;
      p.m = {formats[f], p.data.data(), p.scales.data()};
      packed[f].push_back(std::move(p));
    }
  }
  std::printf("linear_bench: W [%zu, %zu], %zu threads, %zu copies cycled, median of %zu\n", N, K, threads, copies,
              repeats);
  std::printf("%5s  %-12s %10s %10s %10s\n", "M", "kernel", "us/call", "GB/s W", "GFLOP/s");
  for (size_t M : {1, 2, 4, 8, 16, 32, 64, 256}) {
    std::vector<float> x(M * K), out(M * N);
    for (float& v : x) v = normal(gen);
    auto report = [&](const char* name, double seconds, double bytes) {
      std::printf("%5zu  %-12s %10.1f %10.2f %10.1f\n", M, name, seconds * 1e6, bytes / seconds / 1e9,
                  2.0 * M * N * K / seconds / 1e9);
    };
    size_t i = 0;
    const double sgemm = median_seconds(repeats, [&] {
      sc::matmul_forward(pool, out.data(), x.data(), W[i++ % copies].data(), M, N, K, false);
    });
    report("sgemm fp32", sgemm, 4.0 * N * K);
    for (size_t f = 0; f < 3; ++f) {
      i = 0;
      const double t = median_seconds(repeats, [&] {
        sc::linear_forward(pool, out.data(), x.data(), packed[f][i++ % copies].m, M, N, K, false);
      });
      report(fmt::format("linear {}", sc::weight_format_name(formats[f])).c_str(), t,
             static_cast<double>(sc::weight_matrix_bytes(formats[f], N, K)));
    }
  }
  return 0;
}
