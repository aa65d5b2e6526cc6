// config.json of a model (`train --config FILE`, `plan --model FILE`, the
// config.json in every checkpoint): load and validate, then everything that
// sizes buffers from it, whose products must fit in 64 bits (docs/model.md,
// "Bounds").
#include <algorithm>

#include "fuzz_util.h"
#include "model/config.h"
#include "model/counts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sc::fuzz::run_guarded([&] {
    const std::string path = sc::fuzz::write_scratch("config.json", sc::fuzz::as_text(data, size));
    sc::Result<sc::ModelConfig> config = sc::ModelConfig::load(path);
    if (!config.ok()) return;
    const int64_t seq_len = std::min<int64_t>(config->max_position_embeddings, 64);
    (void)sc::count_parameters(*config);
    (void)sc::flops_per_token(*config, seq_len);
    (void)sc::parameter_buffer_floats(sc::parameter_layout(*config));
    if (sc::check_training_shape(*config, 2, seq_len).ok()) {
      (void)sc::estimate_training_memory(*config, 2, seq_len);
      (void)sc::counts_report(*config, 2, seq_len).dump();
    }
  });
}
