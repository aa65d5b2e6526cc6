// decode_bench: decode speed of the model's inference path in each weight
// format (fp32, bf16, int8), as llama.cpp's llama-bench measures "tg": every
// sequence starts from a one-token prompt and decodes --tokens tokens, one
// forward per step with all sequences batched. Prints tokens/s per format and
// batch size (batch 1 is the single-user speed, larger batches the server's
// total), interleaving formats round by round so a neighbour's load on the
// shared cores hits each alike. Asserts nothing (bench/README.md).
//
//   build/bench/decode_bench --config gpt2-124m [--threads 2] [--tokens 128] [--batches 1,4,16] [--rounds 3]
//   build/bench/decode_bench --checkpoint runs/grok-mini-fortunes
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/cpu_tuning.h"
#include "core/thread_pool.h"
#include "bench_model.h"
#include "model/inference.h"

namespace {

using Clock = std::chrono::steady_clock;

using sc::bench::fail;

}  // namespace

int main(int argc, char** argv) {
  const std::string cpu_tuning = sc::tune_cpu_environment(argv);  // may re-execute
  CLI::App app{"Decode tokens/s per weight format and batch size"};
  std::string checkpoint, config_name = "gpt2-124m";
  std::vector<std::string> format_names = {"fp32", "bf16", "int8"};
  std::vector<size_t> batches = {1};
  size_t tokens = 128, rounds = 3, threads = 0;
  app.add_option("--checkpoint", checkpoint, "A run directory or checkpoint (else random weights of --config)");
  app.add_option("--config", config_name, "Preset or config.json when no checkpoint")->capture_default_str();
  app.add_option("--weights", format_names, "Formats to measure")->delimiter(',')->capture_default_str();
  app.add_option("--batches", batches, "Sequences decoded together")->delimiter(',')->capture_default_str();
  app.add_option("--tokens", tokens, "Tokens each sequence decodes")->capture_default_str();
  app.add_option("--rounds", rounds, "Timed rounds (the best is reported)")->capture_default_str();
  app.add_option("--threads", threads, "Threads; 0 all cores")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  sc::ThreadPool pool(threads ? threads : sc::default_thread_count());

  auto loaded = sc::bench::load_bench_model(checkpoint, config_name, pool);
  if (!loaded.ok()) return fail(loaded.status());
  const sc::ModelConfig& config = loaded->config;
  const std::vector<float>& params = loaded->params;
  const std::string& source = loaded->source;
  const size_t max_batch = *std::max_element(batches.begin(), batches.end());
  const size_t context = tokens + 1;
  if (context > static_cast<size_t>(config.max_position_embeddings)) {
    return fail(sc::Status::invalid("--tokens {}: the model's context is {}", tokens, config.max_position_embeddings));
  }
  std::vector<sc::WeightFormat> formats;
  std::vector<std::unique_ptr<sc::Inference>> inferences;
  for (const std::string& name : format_names) {
    auto format = sc::weight_format_from_name(name);
    if (!format) return fail(sc::Status::invalid("--weights: '{}' is not fp32, bf16 or int8", name));
    auto inference = sc::Inference::create(config, params.data(), std::max<size_t>(max_batch, 1), max_batch, pool, *format);
    if (!inference.ok()) return fail(inference.status());
    formats.push_back(*format);
    inferences.push_back(std::move(*inference));
  }
  auto cache = sc::KvCache::create(config, max_batch, context);
  if (!cache.ok()) return fail(cache.status());

  // One run: `batch` sequences from a one-token prompt, `tokens` decode steps.
  auto run = [&](sc::Inference& inference, size_t batch) -> sc::Result<double> {
    std::vector<uint32_t> next(batch);
    std::vector<size_t> slots(batch), positions(batch, 0);
    std::vector<sc::Inference::Sequence> prompts;
    for (size_t b = 0; b < batch; ++b) {
      slots[b] = b;
      next[b] = static_cast<uint32_t>((b * 7919 + 13) % config.vocab_size);
    }
    for (size_t b = 0; b < batch; ++b) prompts.push_back({{&next[b], 1}, b, 0});
    SC_RETURN_IF_ERROR(inference.prefill(*cache, prompts).status());
    const auto start = Clock::now();
    for (size_t t = 0; t < tokens; ++t) {
      for (size_t b = 0; b < batch; ++b) positions[b] = t + 1;
      SC_ASSIGN_OR_RETURN(const float* logits, inference.decode(*cache, next, slots, positions));
      // Greedy next token: the argmax a real decode loop computes.
      for (size_t b = 0; b < batch; ++b) {
        const float* row = logits + b * config.vocab_size;
        next[b] = static_cast<uint32_t>(std::max_element(row, row + config.vocab_size) - row);
      }
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
  };

  std::printf("decode_bench: %s\n  %zu threads, %zu tokens per sequence, best of %zu rounds; %s\n", source.c_str(),
              pool.num_threads(), tokens, rounds, cpu_tuning.c_str());
  std::vector<std::vector<double>> best(formats.size(), std::vector<double>(batches.size(), 1e30));
  for (size_t f = 0; f < formats.size(); ++f) {  // warm-up: first touch of every buffer
    if (auto s = run(*inferences[f], batches[0]); !s.ok()) return fail(s.status());
  }
  for (size_t round = 0; round < rounds; ++round) {
    for (size_t bi = 0; bi < batches.size(); ++bi) {
      for (size_t f = 0; f < formats.size(); ++f) {
        auto seconds = run(*inferences[f], batches[bi]);
        if (!seconds.ok()) return fail(seconds.status());
        best[f][bi] = std::min(best[f][bi], *seconds);
      }
    }
  }
  std::printf("  %-6s %12s", "format", "weights MB");
  for (size_t b : batches) std::printf("  %14s", fmt::format("batch {} tok/s", b).c_str());
  std::printf("\n");
  for (size_t f = 0; f < formats.size(); ++f) {
    std::printf("  %-6s %12.1f", sc::weight_format_name(formats[f]), inferences[f]->matrix_bytes() / 1e6);
    for (size_t bi = 0; bi < batches.size(); ++bi) {
      std::printf("  %14.1f", static_cast<double>(batches[bi] * tokens) / best[f][bi]);
    }
    std::printf("\n");
  }
  return 0;
}
