#include "train/train_options.h"

#include "core/log.h"
#include "run/run_directory.h"
#include "run/run_paths.h"

namespace sc {

#define SC_TRAIN_OPTION_FIELDS(X)                                                                       \
  X(config) X(data_dir) X(out_dir) X(steps) X(stop_at_step) X(batch_size) X(seq_len) X(grad_accum) X(lr) \
  X(global_batch) X(bucket_mb)                                                                          \
  X(min_lr) X(warmup) X(weight_decay) X(beta1) X(beta2) X(grad_clip) X(eval_every) X(eval_batches)      \
  X(checkpoint_every) X(keep_checkpoints) X(seed) X(threads) X(time_limit_min) X(async_checkpoint)     \
  X(spike_factor) X(max_bad_steps)

nlohmann::json TrainOptions::to_json() const {
  nlohmann::json j;
#define SC_TO_JSON(field) j[#field] = field;
  SC_TRAIN_OPTION_FIELDS(SC_TO_JSON)
#undef SC_TO_JSON
  return j;
}

namespace {
template <class T>
Status read_field(const nlohmann::json& j, const char* key, const std::string& source, T* out) {
  const nlohmann::json& v = j.at(key);
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return Status::invalid("{}: training option '{}' must be a string", source, key);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) return Status::invalid("{}: training option '{}' must be a number", source, key);
  } else {
    if (!v.is_number_integer()) return Status::invalid("{}: training option '{}' must be an integer", source, key);
    if constexpr (std::is_unsigned_v<T>) {
      if (v.get<int64_t>() < 0) return Status::invalid("{}: training option '{}' must not be negative", source, key);
    }
  }
  *out = v.get<T>();
  return Status();
}
}  // namespace

Status TrainOptions::apply_json(const nlohmann::json& j, const std::string& source) {
  if (j.is_null()) return Status();
  if (!j.is_object()) return Status::invalid("{}: 'training' must be an object", source);
  const nlohmann::json known = to_json();
  for (const auto& [key, value] : j.items()) {
    if (!known.contains(key)) return Status::invalid("{}: unknown training option '{}'", source, key);
  }
#define SC_FROM_JSON(field) \
  if (j.contains(#field)) SC_RETURN_IF_ERROR(read_field(j, #field, source, &field));
  SC_TRAIN_OPTION_FIELDS(SC_FROM_JSON)
#undef SC_FROM_JSON
  return Status();
}

Status TrainOptions::validate() const {
  auto positive = [](const char* name, double v) -> Status {
    if (!(v > 0)) return Status::invalid("--{} must be positive (got {})", name, v);
    return Status();
  };
  SC_RETURN_IF_ERROR(positive("steps", static_cast<double>(steps)));
  SC_RETURN_IF_ERROR(positive("batch-size", static_cast<double>(batch_size)));
  SC_RETURN_IF_ERROR(positive("seq-len", static_cast<double>(seq_len)));
  SC_RETURN_IF_ERROR(positive("grad-accum", static_cast<double>(grad_accum)));
  SC_RETURN_IF_ERROR(positive("lr", lr));
  SC_RETURN_IF_ERROR(positive("bucket-mb", bucket_mb));
  if (global_batch < 0) return Status::invalid("--global-batch must not be negative (got {})", global_batch);
  SC_RETURN_IF_ERROR(positive("eval-batches", static_cast<double>(eval_batches)));
  if (min_lr < 0 || min_lr > lr) return Status::invalid("--min-lr {} must be in [0, --lr {}]", min_lr, lr);
  if (warmup < -1 || warmup > steps) return Status::invalid("--warmup {} must be in [0, --steps {}]", warmup, steps);
  if (stop_at_step < 0 || stop_at_step > steps) return Status::invalid("--stop-at-step {} must be in [0, --steps {}]", stop_at_step, steps);
  if (beta1 < 0 || beta1 >= 1 || beta2 < 0 || beta2 >= 1) return Status::invalid("--beta1 and --beta2 must be in [0, 1)");
  if (weight_decay < 0 || grad_clip < 0 || eval_every < 0 || checkpoint_every < 0 || keep_checkpoints < 0 ||
      threads < 0 || time_limit_min < 0) {
    return Status::invalid("--weight-decay, --grad-clip, --eval-every, --checkpoint-every, --keep-checkpoints, "
                           "--threads and --time-limit must not be negative");
  }
  if (async_checkpoint != 0 && async_checkpoint != 1) {
    return Status::invalid("--async-checkpoint must be 0 or 1 (got {})", async_checkpoint);
  }
  if (spike_factor < 0 || (spike_factor > 0 && spike_factor <= 1)) {
    return Status::invalid("--spike-factor must be 0 (off) or above 1 (got {})", spike_factor);
  }
  if (max_bad_steps < 1) return Status::invalid("--max-bad-steps must be at least 1 (got {})", max_bad_steps);
  if (data_dir.empty()) return Status::invalid("--data is required");
  if (out_dir.empty()) return Status::invalid("--out is required");
  return Status();
}

Status TrainOptions::resolve_batch(int ranks) {
  const int64_t per_pass = batch_size * ranks;  // sequences when every rank runs one micro-batch
  if (global_batch == 0) {
    global_batch = per_pass * grad_accum;
    return Status();
  }
  if (global_batch % per_pass != 0) {
    return Status::invalid("--global-batch {} is not a multiple of --batch-size {} x {} ranks = {}", global_batch,
                           batch_size, ranks, per_pass);
  }
  grad_accum = global_batch / per_pass;
  return Status();
}

namespace {

// Options that must not change across a resume, or the continued run would
// not be the run that was checkpointed. (The batch is fixed as global_batch:
// a resume on another number of ranks derives its own grad_accum from it.)
constexpr const char* kFixedOnResume[] = {"config", "global_batch", "seq_len", "seed", "data_dir"};

Result<ResolvedRun> resolve_resumed_run(const nlohmann::json& overrides, const std::string& out_dir) {
  if (out_dir.empty()) return Status::invalid("--resume needs --out, the run directory to continue");
  std::vector<std::string> skipped;
  auto found = find_latest_valid_checkpoint(RunPaths(out_dir).checkpoints(), &skipped);
  for (const std::string& why : skipped) log_warn("skipping checkpoint: {}", why);
  if (!found.ok()) return found.status().with_context("--resume");
  ResolvedRun run;
  run.checkpoint = *found;
  SC_ASSIGN_OR_RETURN(run.state, TrainerState::load(found->path));
  const nlohmann::json& saved = run.state->options;
  SC_RETURN_IF_ERROR(run.options.apply_json(saved, found->path + "/" + checkpoint_file::kTrainerState));
  for (const char* key : kFixedOnResume) {
    if (overrides.contains(key) && (!saved.contains(key) || overrides[key] != saved[key])) {
      return Status::invalid("--resume: '{}' is {} in the checkpoint and {} on the command line; a resumed run "
                             "must keep it", key, saved.value(key, nlohmann::json()).dump(), overrides[key].dump());
    }
  }
  nlohmann::json flags = overrides;
  if (!flags.contains("stop_at_step")) flags["stop_at_step"] = 0;  // an early stop is not inherited
  SC_RETURN_IF_ERROR(run.options.apply_json(flags, "command line"));
  SC_ASSIGN_OR_RETURN(run.config, ModelConfig::load(found->path + "/" + checkpoint_file::kConfig));
  return run;
}

}  // namespace

Result<ResolvedRun> resolve_run(const nlohmann::json& overrides, bool resume) {
  TrainOptions flags;
  SC_RETURN_IF_ERROR(flags.apply_json(overrides, "command line"));
  if (resume) return resolve_resumed_run(overrides, flags.out_dir);
  ResolvedRun run;
  SC_ASSIGN_OR_RETURN(run.config, ModelConfig::resolve(flags.config));
  SC_RETURN_IF_ERROR(run.options.apply_json(run.config.training, flags.config + " 'training'"));
  SC_RETURN_IF_ERROR(run.options.apply_json(overrides, "command line"));
  return run;
}

Status check_new_run_directory(const TrainOptions& options) {
  if (options.out_dir.empty()) return Status();
  const ExistingRun existing = find_existing_run(RunPaths(options.out_dir));
  if (existing.empty()) return Status();
  return Status::invalid("{} already holds a run ({}): pass --resume to continue it, --overwrite to replace it, or "
                         "choose another --out", options.out_dir, existing.describe());
}

Status check_grad_accum_flag(const TrainOptions& options, const nlohmann::json& overrides, bool resume, int ranks) {
  if (!overrides.contains("grad_accum")) return Status();
  // A fixed global batch decides grad_accum; an explicit one must agree.
  TrainOptions resolved = options;
  SC_RETURN_IF_ERROR(resolved.resolve_batch(ranks));
  if (resolved.grad_accum != options.grad_accum) {
    return Status::invalid("--grad-accum {} conflicts with the global batch of {} sequences{}: batch size {} on {} "
                           "ranks needs --grad-accum {}; give only one of them",
                           options.grad_accum, options.global_batch, resume ? " of the resumed run" : "",
                           options.batch_size, ranks, resolved.grad_accum);
  }
  return Status();
}

}  // namespace sc
