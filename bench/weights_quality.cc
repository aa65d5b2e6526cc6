// weights_quality: what packing the matrices to bf16 or int8 costs in
// validation loss. Runs the training forward (Model::forward, the loss
// training reports) over every window of a prepared data set's validation
// split, once per weight format, with the checkpoint's parameters and the
// matrices packed as inference packs them (model/packed_weights.h). Prints
// the mean loss per token of each and its difference from fp32. Asserts
// nothing (bench/README.md).
//
//   build/bench/weights_quality --checkpoint runs/grok-mini-fortunes --data data/fortunes [--seq-len 256]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench_model.h"
#include "core/cpu_tuning.h"
#include "core/thread_pool.h"
#include "data/loader.h"
#include "model/config.h"
#include "model/model.h"
#include "model/packed_weights.h"
#include "model/weights_io.h"
#include "run/checkpoint_store.h"
#include "run/run_paths.h"

namespace {

using sc::bench::fail;

}  // namespace

int main(int argc, char** argv) {
  const std::string cpu_tuning = sc::tune_cpu_environment(argv);  // may re-execute
  CLI::App app{"Validation loss of a checkpoint with its matrices in fp32, bf16 and int8"};
  std::string checkpoint, data;
  uint32_t seq_len = 256, batch = 8;
  size_t threads = 0;
  app.add_option("--checkpoint", checkpoint, "A run directory or checkpoint")->required();
  app.add_option("--data", data, "A prepared data directory with a val split")->required();
  app.add_option("--seq-len", seq_len, "Tokens per window")->capture_default_str();
  app.add_option("--batch-size", batch, "Windows per forward")->capture_default_str();
  app.add_option("--threads", threads, "Threads; 0 all cores")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  sc::ThreadPool pool(threads ? threads : sc::default_thread_count());

  auto found = sc::resolve_checkpoint(checkpoint);
  if (!found.ok()) return fail(found.status());
  auto config = sc::ModelConfig::load(found->path + "/" + sc::checkpoint_file::kConfig);
  if (!config.ok()) return fail(config.status());
  auto model = sc::Model::create(*config, batch, seq_len, pool);
  if (!model.ok()) return fail(model.status());
  sc::Model& m = **model;
  if (auto s = sc::load_weights(found->path + "/" + sc::checkpoint_file::kModel, m.layout(), m.params()); !s.ok()) {
    return fail(s);
  }
  auto loader = sc::DataLoader::open(
      data, "val",
      {.batch_size = batch, .seq_len = seq_len, .shuffle = false, .expected_vocab_size = static_cast<uint32_t>(config->vocab_size)});
  if (!loader.ok()) return fail(loader.status());
  const uint64_t batches = loader->total_windows() / batch;
  if (batches == 0) return fail(sc::Status::invalid("{}: fewer than {} validation windows of {} tokens", data, batch, seq_len));
  auto weights = sc::bind_weights(*config, m.layout(), m.params());
  if (!weights.ok()) return fail(weights.status());

  std::printf("weights_quality: %s on %s (val: %llu windows of %u tokens)\n  %s\n", found->path.c_str(), data.c_str(),
              static_cast<unsigned long long>(batches * batch), seq_len, cpu_tuning.c_str());
  std::printf("  %-6s %12s %10s %12s\n", "format", "matrices MB", "val loss", "vs fp32");
  std::vector<uint32_t> inputs(static_cast<size_t>(batch) * seq_len), targets(inputs.size());
  double fp32_loss = 0;
  for (sc::WeightFormat format : {sc::WeightFormat::kF32, sc::WeightFormat::kBf16, sc::WeightFormat::kInt8}) {
    auto packed = sc::PackedWeights::create(*config, *weights, format, pool);
    if (!packed.ok()) return fail(packed.status());
    m.set_forward_matrices(&packed->matrices());
    double loss_sum = 0, count = 0;
    for (uint64_t b = 0; b < batches; ++b) {
      loader->read_batch_at(b * batch, inputs.data(), targets.data());
      auto sums = m.forward(inputs.data(), targets.data());
      if (!sums.ok()) return fail(sums.status());
      loss_sum += sums->loss_sum;
      count += static_cast<double>(sums->count);
    }
    m.set_forward_matrices(nullptr);
    const double loss = loss_sum / count;
    if (format == sc::WeightFormat::kF32) fp32_loss = loss;
    std::printf("  %-6s %12.1f %10.5f %+12.5f\n", sc::weight_format_name(format), packed->matrix_bytes() / 1e6, loss,
                loss - fp32_loss);
  }
  return 0;
}
