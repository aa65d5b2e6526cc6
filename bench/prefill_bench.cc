// prefill_bench: how long the prompt takes before the first new token.
// "token by token" is the old generator's algorithm (one decode forward per
// prompt token, here the model's own decode); "batched prefill" is the
// inference path's one forward over the whole prompt. Both fill a fresh KV
// cache from position 0 with the same tokens; the bench prints the median
// and minimum of each, the ratio, and the worst difference of their
// last-position logits. It asserts nothing (bench/README.md).
//
//   build/bench/prefill_bench --checkpoint /work/ref/run-qs [--tokens 200] [--repeats 7]
//   build/bench/prefill_bench --config grok-mini            (random weights)
//   build/bench/prefill_bench --checkpoint DIR --prompt "text"  (that prompt, tokenized as generate does)
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench_model.h"
#include "core/cpu_tuning.h"
#include "core/thread_pool.h"
#include "data/tokenizer.h"
#include "model/config.h"
#include "model/counts.h"
#include "model/inference.h"
#include "model/model.h"
#include "model/weights_io.h"
#include "run/checkpoint_store.h"
#include "run/run_paths.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

using sc::bench::fail;

}  // namespace

int main(int argc, char** argv) {
  const std::string cpu_tuning = sc::tune_cpu_environment(argv);  // may re-execute
  CLI::App app{"Prompt prefill: token-by-token decode vs one batched forward"};
  std::string checkpoint, config_name = "grok-mini", prompt;
  size_t tokens = 200, repeats = 7, threads = 0;
  app.add_option("--checkpoint", checkpoint, "A run directory or checkpoint (else random weights of --config)");
  app.add_option("--config", config_name, "Preset or config.json when no checkpoint")->capture_default_str();
  app.add_option("--tokens", tokens, "Prompt tokens (ignored with --prompt)")->capture_default_str();
  app.add_option("--prompt", prompt, "Text to prefill: end-of-document token + its tokens, as generate does");
  app.add_option("--repeats", repeats, "Timed runs of each (after one warm-up)")->capture_default_str();
  app.add_option("--threads", threads, "Threads; 0 all cores")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (repeats == 0) repeats = 1;
  sc::ThreadPool pool(threads ? threads : sc::default_thread_count());

  auto loaded = sc::bench::load_bench_model(checkpoint, config_name, pool);
  if (!loaded.ok()) return fail(loaded.status());
  const sc::ModelConfig& config = loaded->config;
  const std::vector<float>& params = loaded->params;
  const std::string& source = loaded->source;
  std::vector<uint32_t> ids;
  if (!prompt.empty() && !loaded->checkpoint.empty()) {
    auto tokenizer = sc::Tokenizer::load(loaded->checkpoint + "/" + sc::checkpoint_file::kTokenizer);
    if (!tokenizer.ok()) return fail(tokenizer.status());
    ids.push_back(tokenizer->end_of_document_id());
    std::vector<uint32_t> prompt_ids;
    if (auto s = tokenizer->encode(prompt, &prompt_ids); !s.ok()) return fail(s);
    ids.insert(ids.end(), prompt_ids.begin(), prompt_ids.end());
  }
  if (ids.empty()) {
    for (size_t i = 0; i < tokens; ++i) ids.push_back(static_cast<uint32_t>((i * 7919 + 13) % config.vocab_size));
  }
  const size_t n = ids.size(), V = config.vocab_size;
  if (n == 0 || n > static_cast<size_t>(config.max_position_embeddings)) {
    return fail(sc::Status::invalid("{} prompt tokens; the context is {}", n, config.max_position_embeddings));
  }

  auto inference = sc::Inference::create(config, params.data(), n, 1, pool);
  if (!inference.ok()) return fail(inference.status());
  auto cache = sc::KvCache::create(config, 1, n);
  if (!cache.ok()) return fail(cache.status());
  std::vector<float> last_stepped(V), last_batched(V);
  auto token_by_token = [&]() -> sc::Status {
    const size_t slot = 0;
    for (size_t t = 0; t < n; ++t) {
      SC_ASSIGN_OR_RETURN(const float* logits, (*inference)->decode(*cache, {&ids[t], 1}, {&slot, 1}, {&t, 1}));
      if (t + 1 == n) std::copy_n(logits, V, last_stepped.begin());
    }
    return sc::Status();
  };
  auto batched = [&]() -> sc::Status {
    const sc::Inference::Sequence prompt_sequence{ids, 0, 0};
    SC_ASSIGN_OR_RETURN(const float* logits, (*inference)->prefill(*cache, {&prompt_sequence, 1}));
    std::copy_n(logits, V, last_batched.begin());
    return sc::Status();
  };
  auto time_it = [&](const auto& run, std::vector<double>* seconds) -> sc::Status {
    SC_RETURN_IF_ERROR(run());  // warm-up
    for (size_t r = 0; r < repeats; ++r) {
      const auto start = Clock::now();
      SC_RETURN_IF_ERROR(run());
      seconds->push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    return sc::Status();
  };
  std::vector<double> stepped_s, batched_s;
  // Interleaved, so a neighbour's load on the shared cores hits both alike.
  for (size_t round = 0; round < 2; ++round) {
    if (auto s = time_it(token_by_token, &stepped_s); !s.ok()) return fail(s);
    if (auto s = time_it(batched, &batched_s); !s.ok()) return fail(s);
  }
  double worst = 0;
  for (size_t v = 0; v < V; ++v) {
    worst = std::max(worst, std::fabs(static_cast<double>(last_stepped[v]) - last_batched[v]) /
                                std::max(1.0, std::fabs(static_cast<double>(last_stepped[v]))));
  }
  const double before = median(stepped_s), after = median(batched_s);
  fmt::print("prefill of a {}-token prompt, {} ({} threads; {})\n", n, source, pool.num_threads(), cpu_tuning);
  fmt::print("  token by token (decode per token): median {:8.2f} ms  min {:8.2f} ms  ({:.0f} tokens/s)\n",
             1e3 * before, 1e3 * *std::min_element(stepped_s.begin(), stepped_s.end()), n / before);
  fmt::print("  batched prefill (one forward):     median {:8.2f} ms  min {:8.2f} ms  ({:.0f} tokens/s)\n",
             1e3 * after, 1e3 * *std::min_element(batched_s.begin(), batched_s.end()), n / after);
  fmt::print("  speed-up {:.1f}x; last-position logits differ by at most {:.1e} (relative to max(1,|logit|))\n",
             before / after, worst);
  return 0;
}
