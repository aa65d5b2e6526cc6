// train_step_bench: times full supercluster training steps on random tokens
// and prints tokens/s, step time, model TFLOP/s (model_flops_per_token, the
// one FLOP definition) and that as a share of this CPU's fp32 sgemm peak,
// measured in the same process. The PyTorch peer (bench/pytorch_peer.py)
// runs the same steps; bench/run_train_bench.sh runs both and prints the ratio.
//
// A step is exactly the trainer's (src/train/trainer.cc): zero_grads,
// forward, backward(1/count), global grad norm + clip to 1.0, AdamW update
// over the flat buffer (no decay on norm weights). Warmup steps are run and
// not timed. This is a benchmark: it prints figures and asserts no time.
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/cpu_tuning.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/peak.h"
#include "model/config.h"
#include "model/counts.h"
#include "model/model.h"
#include "train/adamw.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// CPU seconds since boot: all CPUs busy (from /proc/stat), and this process.
// Their difference over the timed steps is what other processes took from
// the machine while we measured: a shared box shows up in the figures.
struct CpuSample {
  double system_busy_s = 0, system_total_s = 0, self_s = 0;
};

CpuSample sample_cpu() {
  CpuSample c;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  if (FILE* f = std::fopen("/proc/stat", "r")) {
    unsigned long long v[8] = {};
    if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6], &v[7]) == 8) {
      unsigned long long total = 0;
      for (auto x : v) total += x;
      c.system_total_s = static_cast<double>(total) / tick;
      c.system_busy_s = static_cast<double>(total - v[3] - v[4]) / tick;  // minus idle and iowait
    }
    std::fclose(f);
  }
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  c.self_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  return c;
}

// Percent of the machine's CPU time that other processes used between a and b.
double others_cpu_pct(const CpuSample& a, const CpuSample& b) {
  const double total = b.system_total_s - a.system_total_s;
  if (total <= 0) return 0.0;
  const double others = (b.system_busy_s - a.system_busy_s) - (b.self_s - a.self_s);
  return std::max(0.0, 100.0 * others / total);
}

int fail(const sc::Status& status) {
  std::fprintf(stderr, "train_step_bench: %s\n", status.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cpu_tuning = sc::tune_cpu_environment(argv);  // may re-execute

  std::string config_name = "gpt2-124m";
  int64_t batch = 4, seq_len = 256, threads = 2, steps = 8, warmup = 2;
  uint64_t seed = 1337;
  double lr = 3e-4, grad_clip = 1.0;
  bool json_out = false, print_config = false, pin = false;
  CLI::App app{"Times supercluster training steps (forward, backward, clip, AdamW) on random tokens"};
  app.add_option("--config", config_name, "Preset name or config.json path")->capture_default_str();
  app.add_option("--batch-size", batch, "Sequences per step")->capture_default_str();
  app.add_option("--seq-len", seq_len, "Tokens per sequence")->capture_default_str();
  app.add_option("--threads", threads, "Threads of the one pool")->capture_default_str();
  app.add_option("--steps", steps, "Timed steps")->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed steps first")->capture_default_str();
  app.add_option("--seed", seed, "Seed of weights and tokens")->capture_default_str();
  app.add_option("--lr", lr, "Constant learning rate")->capture_default_str();
  app.add_option("--grad-clip", grad_clip, "Global gradient-norm clip")->capture_default_str();
  app.add_flag("--pin", pin, "Pin pool threads to cores (the trainer does not)");
  app.add_flag("--json", json_out, "Print one JSON object instead of text");
  app.add_flag("--print-config", print_config, "Print the resolved config as config.json and exit");
  CLI11_PARSE(app, argc, argv);

  sc::Result<sc::ModelConfig> config = sc::ModelConfig::resolve(config_name);
  if (!config.ok()) return fail(config.status());
  if (print_config) {
    fmt::print("{}\n", config->to_json().dump(2));
    return 0;
  }
  if (batch <= 0 || seq_len <= 0 || threads <= 0 || steps <= 0 || warmup < 0) {
    std::fprintf(stderr, "train_step_bench: sizes, --threads and --steps must be positive\n");
    return 2;
  }

  sc::ThreadPool pool(static_cast<size_t>(threads), pin);
  sc::blas_init_single_threaded();
  const std::string blas = sc::blas_description();

  auto model_or = sc::Model::create(*config, batch, seq_len, pool);
  if (!model_or.ok()) return fail(model_or.status());
  sc::Model& model = **model_or;
  model.init_weights(seed);

  const size_t n = model.num_floats();
  auto arena_or = sc::Arena::create(2 * n * sizeof(float) + 256, "optimizer");
  if (!arena_or.ok()) return fail(arena_or.status());
  sc::Arena optimizer_arena = std::move(arena_or).value();
  float* m = optimizer_arena.allocate<float>(n).value();
  float* v = optimizer_arena.allocate<float>(n).value();
  std::vector<sc::DecayRange> ranges;
  for (const sc::TensorSpec& t : model.layout()) {
    ranges.push_back({static_cast<size_t>(t.offset), static_cast<size_t>(t.offset + t.numel()), !t.is_norm});
  }
  sc::AdamW adamw(sc::AdamWConfig{0.9, 0.95, 1e-8, 0.1}, std::move(ranges), m, v, n);

  // Random tokens (fixed seed, < vocab); targets are the next token of a
  // longer random stream, as a data loader would give.
  const size_t tokens_per_step = static_cast<size_t>(batch * seq_len);
  std::vector<uint32_t> tokens(tokens_per_step), targets(tokens_per_step);
  {
    std::mt19937_64 gen(seed);
    std::uniform_int_distribution<uint32_t> dist(0, static_cast<uint32_t>(config->vocab_size - 1));
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<uint32_t> stream(static_cast<size_t>(seq_len + 1));
      for (auto& t : stream) t = dist(gen);
      for (int64_t t = 0; t < seq_len; ++t) {
        tokens[b * seq_len + t] = stream[t];
        targets[b * seq_len + t] = stream[t + 1];
      }
    }
  }

  // The denominator: this process's own sgemm peak, on the same pool,
  // measured before and after the timed steps; the better of the two, so a
  // burst of someone else's work on a shared machine does not lower it.
  double peak_gflops = sc::measure_matmul_peak_gflops(pool);
  const int64_t flops_per_token = sc::model_flops_per_token(*config, seq_len);

  std::vector<double> step_s, forward_s, backward_s, optimizer_s, losses;
  CpuSample cpu_begin;
  for (int64_t s = 0; s < warmup + steps; ++s) {
    if (s == warmup) cpu_begin = sample_cpu();
    const auto t0 = Clock::now();
    model.zero_grads();
    auto sums = model.forward(tokens.data(), targets.data());
    if (!sums.ok()) return fail(sums.status());
    const auto t1 = Clock::now();
    model.backward(static_cast<float>(1.0 / static_cast<double>(sums->count)));
    const auto t2 = Clock::now();
    const double grad_norm = std::sqrt(sc::sum_of_squares(model.grads(), n, pool));
    adamw.update(model.params(), model.grads(), lr, s + 1, pool, sc::clip_coefficient(grad_norm, grad_clip));
    const auto t3 = Clock::now();
    const double loss = sums->loss_sum / static_cast<double>(sums->count);
    if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
      std::fprintf(stderr, "train_step_bench: non-finite loss %g or grad norm %g at step %lld\n", loss, grad_norm,
                   static_cast<long long>(s + 1));
      return 1;
    }
    losses.push_back(loss);
    if (s < warmup) continue;
    step_s.push_back(std::chrono::duration<double>(t3 - t0).count());
    forward_s.push_back(std::chrono::duration<double>(t1 - t0).count());
    backward_s.push_back(std::chrono::duration<double>(t2 - t1).count());
    optimizer_s.push_back(std::chrono::duration<double>(t3 - t2).count());
  }

  const double others_pct = others_cpu_pct(cpu_begin, sample_cpu());
  peak_gflops = std::max(peak_gflops, sc::measure_matmul_peak_gflops(pool));

  double total_s = 0;
  for (double x : step_s) total_s += x;
  const double mean_step_s = total_s / static_cast<double>(step_s.size());
  const double tokens_per_s = static_cast<double>(tokens_per_step) / mean_step_s;
  const double model_tflops = tokens_per_s * static_cast<double>(flops_per_token) / 1e12;
  const double pct_of_peak = 100.0 * model_tflops * 1e3 / peak_gflops;
  auto mean = [](const std::vector<double>& xs) {
    double t = 0;
    for (double x : xs) t += x;
    return xs.empty() ? 0.0 : t / static_cast<double>(xs.size());
  };

  nlohmann::json out = {
      {"impl", "supercluster"},
      {"config", config_name},
      {"batch_size", batch},
      {"seq_len", seq_len},
      {"threads", threads},
      {"steps", steps},
      {"warmup", warmup},
      {"parameters", sc::count_parameters(*config).total},
      {"tokens_per_step", tokens_per_step},
      {"flops_per_token", flops_per_token},
      {"step_time_s", mean_step_s},
      {"step_time_median_s", median(step_s)},
      {"step_time_min_s", *std::min_element(step_s.begin(), step_s.end())},
      {"tokens_per_s", tokens_per_s},
      {"model_tflops", model_tflops},
      {"peak_gflops", peak_gflops},
      {"pct_of_peak", pct_of_peak},
      {"forward_s", mean(forward_s)},
      {"backward_s", mean(backward_s)},
      {"optimizer_s", mean(optimizer_s)},
      {"other_processes_cpu_pct", others_pct},
      {"loss_first", losses.front()},
      {"loss_last", losses.back()},
      {"blas", blas},
      {"cpu_tuning", cpu_tuning},
      {"peak_method", "sgemm 2048^3 through matmul_forward on the pool, best of 5, before and after the steps"},
  };
  if (json_out) {
    fmt::print("{}\n", out.dump());
    return 0;
  }
  fmt::print("supercluster train_step_bench: {} ({} parameters), batch {} x {} tokens, {} threads\n", config_name,
             sc::count_parameters(*config).total, batch, seq_len, threads);
  fmt::print("  {}\n  BLAS: {}\n", cpu_tuning, blas);
  fmt::print("  fp32 sgemm peak (2048^3, this process): {:.1f} GFLOP/s\n", peak_gflops);
  fmt::print("  {} timed steps after {} warmup; {:.1f} MFLOP per token (model_flops_per_token)\n", steps, warmup,
             static_cast<double>(flops_per_token) / 1e6);
  fmt::print("  step time  {:.3f} s mean, {:.3f} s median, {:.3f} s min\n", mean_step_s, median(step_s),
             *std::min_element(step_s.begin(), step_s.end()));
  fmt::print("    forward {:.3f} s, backward {:.3f} s, norm+clip+AdamW {:.3f} s\n", mean(forward_s),
             mean(backward_s), mean(optimizer_s));
  fmt::print("  tokens/s   {:.1f}\n", tokens_per_s);
  fmt::print("  model      {:.3f} TFLOP/s = {:.1f}% of the measured peak\n", model_tflops, pct_of_peak);
  fmt::print("  loss       {:.4f} -> {:.4f}\n", losses.front(), losses.back());
  fmt::print("  other processes used {:.1f}% of the CPUs during the timed steps{}\n", others_pct,
             others_pct > 5 ? " (a shared machine: figures are low)" : "");
  return 0;
}
