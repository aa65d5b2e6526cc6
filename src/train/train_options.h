// What `supercluster train` does, from three layers: built-in defaults, the
// "training" object of config.json, then command-line flags. Keys are the
// flag names with '_' for '-'.
#pragma once

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "model/config.h"
#include "run/checkpoint_store.h"
#include "train/trainer_state.h"

namespace sc {

// The source name of flags given on the command line: their errors name the
// flag ("--lr must be ..."), those of a file name the file and the key.
inline constexpr const char* kCommandLine = "command line";

// Sequences per optimizer step over all ranks, at most.
inline constexpr int64_t kMaxGlobalBatch = int64_t{1} << 30;

struct TrainOptions {
  std::string config = "grok-mini";  // preset name or config.json path
  std::string data_dir;
  std::string out_dir;
  int64_t steps = 1000;        // optimizer steps of the whole run (the LR schedule's length)
  int64_t stop_at_step = 0;    // stop early at this step (0: run to `steps`), schedule unchanged
  int64_t batch_size = 8;      // sequences per micro-batch
  int64_t seq_len = 256;
  int64_t grad_accum = 1;      // micro-batches per optimizer step on each rank
  int64_t global_batch = 0;    // sequences per optimizer step over all ranks; 0: batch_size·grad_accum·ranks
  double bucket_mb = 16;       // data parallelism: gradient bucket size (each reduce-scatter)
  double lr = 1e-3;
  double min_lr = 1e-4;
  int64_t warmup = -1;         // -1: 5% of steps, at most 200
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double grad_clip = 1.0;      // 0: off
  int64_t eval_every = 100;    // 0: only at the end
  int64_t eval_batches = 16;
  int64_t checkpoint_every = 500;  // 0: only at the end
  int64_t keep_checkpoints = 3;
  uint64_t seed = 1337;
  int64_t threads = 0;         // 0: all cores
  double time_limit_min = 0;   // 0: none; else stop (and checkpoint) after this many minutes
  int64_t async_checkpoint = 1;  // 1: write checkpoints on a background thread; 0: the step loop waits
  double spike_factor = 3.0;   // skip a step whose loss is above this x the recent mean; 0: off (NaN always caught)
  int64_t max_bad_steps = 3;   // skipped steps in a row before rolling back to the last checkpoint

  nlohmann::json to_json() const;
  // Overrides the fields present in `j`; unknown keys, wrong types and values
  // outside their range (README, "supercluster train") are errors naming
  // `source` and the key, or the flag when `source` is kCommandLine.
  Status apply_json(const nlohmann::json& j, const std::string& source);
  // Every number finite and in its range, alone and against the others
  // (--min-lr <= --lr, ...); errors name the flag.
  Status validate_numbers() const;
  // validate_numbers(), and --data and --out given.
  Status validate() const;
  // --seq-len within the model's context, and a micro-batch whose memory
  // fits 64-bit sizes.
  Status check_for_model(const ModelConfig& config) const;
  // Settles global_batch = batch_size · grad_accum · ranks: derives
  // global_batch when 0, else grad_accum from it (an error naming the flags
  // when it does not divide). Megatron's --global-batch-size semantics: the
  // batch of the run stays fixed when the number of ranks changes.
  Status resolve_batch(int ranks);
  int64_t warmup_steps() const { return warmup >= 0 ? warmup : std::min<int64_t>(200, steps / 20); }
};

// What a `train` command starts from, settled before any rank allocates:
// the options by precedence (built-in defaults < config.json's "training"
// < flags; on --resume, the checkpoint's options < flags, where the
// options a resumed run must keep cannot change), the model config, and on
// --resume the newest valid checkpoint of --out with its trainer state.
struct ResolvedRun {
  TrainOptions options;
  ModelConfig config;
  std::optional<CheckpointInfo> checkpoint;  // --resume only
  std::optional<TrainerState> state;         // of `checkpoint`
};
// The flag of a TrainOptions key ("time_limit_min" -> "--time-limit"), and
// what its value must be ("an integer in [1, 16777216]"; empty if unknown).
std::string train_flag_name(std::string_view key);
std::string train_option_expectation(std::string_view key);

// `overrides`: the flags given, as TrainOptions keys.
Result<ResolvedRun> resolve_run(const nlohmann::json& overrides, bool resume);
// A new run must not start in a directory that holds another run's
// checkpoints (valid or not) or metrics: an error naming them.
Status check_new_run_directory(const TrainOptions& options);

// An explicit --grad-accum must agree with the global batch on `ranks` ranks.
Status check_grad_accum_flag(const TrainOptions& options, const nlohmann::json& overrides, bool resume, int ranks);

}  // namespace sc
