#include "train/train_options.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/json_reader.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "model/counts.h"
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

// The documented range of every option (README, "supercluster train"):
// finite, and small enough that the products the trainer forms of them
// (tokens per step, steps x tokens, bucket bytes) fit in 64 bits.
enum class Kind { kString, kInteger, kUnsigned, kNumber };
struct OptionSpec {
  const char* key;
  Kind kind;
  double min = 0, max = 0;  // integers: exact up to 2^53, which every bound here is
  bool min_open = false, max_open = false;
  const char* expected = nullptr;  // what errors say, when more than the range
};

constexpr double kMaxStepCount = static_cast<double>(kMaxSteps);
constexpr size_t kMaxPathBytes = 4096;

constexpr OptionSpec kOptionSpecs[] = {
    {"config", Kind::kString},
    {"data_dir", Kind::kString},
    {"out_dir", Kind::kString},
    {"steps", Kind::kInteger, 1, kMaxStepCount},
    {"stop_at_step", Kind::kInteger, 0, kMaxStepCount},
    {"batch_size", Kind::kInteger, 1, 65536},
    {"seq_len", Kind::kInteger, 1, static_cast<double>(kMaxPositionEmbeddings)},
    {"grad_accum", Kind::kInteger, 1, 65536},
    {"global_batch", Kind::kInteger, 0, static_cast<double>(kMaxGlobalBatch)},
    {"bucket_mb", Kind::kNumber, 0.001, 1e5},
    {"lr", Kind::kNumber, 0, 10, true},
    {"min_lr", Kind::kNumber, 0, 10},
    {"warmup", Kind::kInteger, -1, kMaxStepCount},
    {"weight_decay", Kind::kNumber, 0, 10},
    {"beta1", Kind::kNumber, 0, 1, false, true},
    {"beta2", Kind::kNumber, 0, 1, false, true},
    {"grad_clip", Kind::kNumber, 0, 1e9},
    {"eval_every", Kind::kInteger, 0, kMaxStepCount},
    {"eval_batches", Kind::kInteger, 1, 1 << 20},
    {"checkpoint_every", Kind::kInteger, 0, kMaxStepCount},
    {"keep_checkpoints", Kind::kInteger, 0, 1e6},
    {"seed", Kind::kUnsigned, 0, 18446744073709551615.0},
    {"threads", Kind::kInteger, 0, static_cast<double>(kMaxThreads)},
    {"time_limit_min", Kind::kNumber, 0, 1e8},
    {"async_checkpoint", Kind::kInteger, 0, 1},
    {"spike_factor", Kind::kNumber, 0, 1e6, false, false, "0 (off) or a number in (1, 1000000]"},
    {"max_bad_steps", Kind::kInteger, 1, 1e6},
};

const OptionSpec* find_spec(std::string_view key) {
  for (const OptionSpec& spec : kOptionSpecs) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

std::string expectation(const OptionSpec& spec) {
  if (spec.expected) return spec.expected;
  switch (spec.kind) {
    case Kind::kString: return fmt::format("a string of at most {} bytes", kMaxPathBytes);
    case Kind::kInteger:
    case Kind::kUnsigned:
      return fmt::format("an integer in [{}, {}]", static_cast<int64_t>(spec.min),
                         spec.kind == Kind::kUnsigned ? std::numeric_limits<uint64_t>::max()
                                                      : static_cast<uint64_t>(spec.max));
    case Kind::kNumber:
      return fmt::format("a number in {}{}, {}{}", spec.min_open ? '(' : '[', spec.min, spec.max,
                         spec.max_open ? ')' : ']');
  }
  return "";
}

bool in_range(const OptionSpec& spec, double v) {
  return std::isfinite(v) && (spec.min_open ? v > spec.min : v >= spec.min) &&
         (spec.max_open ? v < spec.max : v <= spec.max);
}

// Whether `v` has the kind and range of `spec`.
bool fits(const OptionSpec& spec, const nlohmann::json& v) {
  switch (spec.kind) {
    case Kind::kString: return v.is_string() && v.get_ref<const std::string&>().size() <= kMaxPathBytes;
    case Kind::kUnsigned: return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    case Kind::kInteger: {
      // Parsed JSON holds every non-negative integer as unsigned.
      if (!v.is_number_integer()) return false;
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(spec.max)) return false;
      const int64_t i = v.get<int64_t>();
      return i >= static_cast<int64_t>(spec.min) && i <= static_cast<int64_t>(spec.max);
    }
    case Kind::kNumber: return v.is_number() && in_range(spec, v.get<double>());
  }
  return false;
}

// A value of our own (a flag, a field) as a message shows it; unlike JSON
// text it spells inf and nan.
std::string shown(const nlohmann::json& v) {
  if (v.is_number_float()) return fmt::format("{}", v.get<double>());
  if (v.is_number() || v.is_boolean()) return v.dump();
  if (v.is_string()) return fmt::format("\"{}\"", text_excerpt(v.get_ref<const std::string&>(), 256));
  return describe_json(v);
}

Status check_option(const OptionSpec& spec, const nlohmann::json& v, const std::string& source) {
  if (fits(spec, v)) return Status();
  if (source == kCommandLine) {
    return Status::invalid("{} must be {} (got {})", train_flag_name(spec.key), expectation(spec), shown(v));
  }
  return Status::invalid("{}: training option '{}' must be {} (got {})", source, spec.key, expectation(spec),
                         v.is_null() ? "null" : describe_json(v));
}

}  // namespace

std::string train_flag_name(std::string_view key) {
  if (key == "data_dir") return "--data";
  if (key == "out_dir") return "--out";
  if (key == "time_limit_min") return "--time-limit";
  std::string flag = "--" + std::string(key);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

std::string train_option_expectation(std::string_view key) {
  const OptionSpec* spec = find_spec(key);
  return spec ? expectation(*spec) : std::string();
}

Status TrainOptions::apply_json(const nlohmann::json& j, const std::string& source) {
  if (j.is_null()) return Status();
  if (!j.is_object()) return Status::invalid("{}: 'training' must be an object (got {})", source, describe_json(j));
  for (const auto& [key, value] : j.items()) {
    const OptionSpec* spec = find_spec(key);
    if (!spec) return Status::invalid("{}: unknown training option '{}'", source, text_excerpt(key, 64));
    SC_RETURN_IF_ERROR(check_option(*spec, value, source));
  }
#define SC_FROM_JSON(field) \
  if (j.contains(#field)) field = j[#field].get<decltype(field)>();
  SC_TRAIN_OPTION_FIELDS(SC_FROM_JSON)
#undef SC_FROM_JSON
  return Status();
}

Status TrainOptions::validate_numbers() const {
  const nlohmann::json j = to_json();
  for (const OptionSpec& spec : kOptionSpecs) SC_RETURN_IF_ERROR(check_option(spec, j[spec.key], kCommandLine));
  if (min_lr > lr) return Status::invalid("--min-lr {} must be in [0, --lr {}]", min_lr, lr);
  if (warmup > steps) return Status::invalid("--warmup {} must be in [0, --steps {}]", warmup, steps);
  if (stop_at_step > steps) return Status::invalid("--stop-at-step {} must be in [0, --steps {}]", stop_at_step, steps);
  if (spike_factor > 0 && spike_factor <= 1) {
    return Status::invalid("--spike-factor must be {} (got {})", expectation(*find_spec("spike_factor")), spike_factor);
  }
  if (batch_size * seq_len > kMaxTokensPerMicroBatch) {
    return Status::invalid("--batch-size {} x --seq-len {} is {} tokens per micro-batch, more than the {} supported",
                           batch_size, seq_len, batch_size * seq_len, kMaxTokensPerMicroBatch);
  }
  return Status();
}

Status TrainOptions::validate() const {
  SC_RETURN_IF_ERROR(validate_numbers());
  if (data_dir.empty()) return Status::invalid("--data is required");
  if (out_dir.empty()) return Status::invalid("--out is required");
  return Status();
}

Status TrainOptions::check_for_model(const ModelConfig& config) const {
  if (seq_len > config.max_position_embeddings) {
    return Status::invalid("--seq-len {} exceeds the model's max_position_embeddings {}", seq_len,
                           config.max_position_embeddings);
  }
  return check_training_shape(config, batch_size, seq_len);
}

Status TrainOptions::resolve_batch(int ranks) {
  const int64_t per_pass = batch_size * ranks;  // sequences when every rank runs one micro-batch
  if (global_batch == 0) {
    if (per_pass * grad_accum > kMaxGlobalBatch) {
      return Status::invalid("--batch-size {} x {} ranks x --grad-accum {} is a global batch of {} sequences, more "
                             "than the {} supported", batch_size, ranks, grad_accum, per_pass * grad_accum,
                             kMaxGlobalBatch);
    }
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
                             "must keep it", key, shown(saved.value(key, nlohmann::json())), shown(overrides[key]));
    }
  }
  nlohmann::json flags = overrides;
  if (!flags.contains("stop_at_step")) flags["stop_at_step"] = 0;  // an early stop is not inherited
  SC_RETURN_IF_ERROR(run.options.apply_json(flags, kCommandLine));
  if (run.state->step > run.options.steps) {
    return Status::invalid("--resume: {} is at step {}, past the run's --steps {}", found->path, run.state->step,
                           run.options.steps);
  }
  SC_ASSIGN_OR_RETURN(run.config, ModelConfig::load(found->path + "/" + checkpoint_file::kConfig));
  return run;
}

}  // namespace

Result<ResolvedRun> resolve_run(const nlohmann::json& overrides, bool resume) {
  TrainOptions flags;
  SC_RETURN_IF_ERROR(flags.apply_json(overrides, kCommandLine));
  if (resume) return resolve_resumed_run(overrides, flags.out_dir);
  ResolvedRun run;
  SC_ASSIGN_OR_RETURN(run.config, ModelConfig::resolve(flags.config));
  SC_RETURN_IF_ERROR(run.options.apply_json(run.config.training, flags.config + " 'training'"));
  SC_RETURN_IF_ERROR(run.options.apply_json(overrides, kCommandLine));
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
