#include <fmt/format.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <type_traits>

#include "cli/commands.h"
#include "cli/flag_checks.h"
#include "train/train_options.h"
#include "train/trainer.h"

namespace sc::cli {

CLI::App* add_train_command(CLI::App& root, CommandRunner* runner) {
  // Flags land in `values`; only the ones given on the command line become
  // overrides, so config.json's "training" object fills the rest.
  auto values = std::make_shared<TrainOptions>();
  auto resume = std::make_shared<bool>(false);
  auto dry_run = std::make_shared<bool>(false);
  auto overwrite = std::make_shared<bool>(false);
  CLI::App* sub = root.add_subcommand("train", "Train a model on prepared token shards");
  struct Flag {
    std::string key;
    CLI::Option* option;
    std::function<Status()> check_text;  // integer flags: the text typed is the value kept
  };
  auto options = std::make_shared<std::vector<Flag>>();
  auto add = [&](const std::string& flag, auto* field, const std::string& help) {
    using T = std::remove_pointer_t<decltype(field)>;
    std::string key = flag.substr(2);
    for (char& ch : key) ch = ch == '-' ? '_' : ch;
    if (key == "data" || key == "out") key += "_dir";
    if (key == "time_limit") key += "_min";
    CLI::Option* option = sub->add_option(flag, *field, help);
    std::function<Status()> check_text;
    if constexpr (std::is_integral_v<T>) {
      check_text = [option, key] { return check_integer_text<T>(*option, train_option_expectation(key)); };
    }
    options->push_back({key, option, std::move(check_text)});
  };
  TrainOptions& v = *values;
  add("--config", &v.config, "Model: a preset (grok-mini, grok-1, llama-mini, gpt2-124m, ...) or a config.json");
  add("--data", &v.data_dir, "Directory written by `supercluster prepare`");
  add("--out", &v.out_dir, "Run directory: metrics.jsonl, loss.svg, checkpoints/");
  add("--steps", &v.steps, "Optimizer steps of the run (length of the LR schedule; default 1000)");
  add("--stop-at-step", &v.stop_at_step, "Stop early at this step without changing the schedule");
  add("--batch-size", &v.batch_size, "Sequences per micro-batch (default 8)");
  add("--seq-len", &v.seq_len, "Tokens per sequence (default 256)");
  add("--grad-accum", &v.grad_accum, "Micro-batches per optimizer step on each rank (default 1)");
  add("--global-batch", &v.global_batch,
      "Sequences per optimizer step over all ranks; sets --grad-accum to global / (batch-size x ranks), so the "
      "run's batch stays the same on any number of ranks (default: batch-size x grad-accum x ranks)");
  add("--bucket-mb", &v.bucket_mb, "Data parallelism: MB of gradients per reduce-scatter bucket (default 16)");
  add("--lr", &v.lr, "Peak learning rate (default 1e-3)");
  add("--min-lr", &v.min_lr, "Learning rate at the end of the cosine decay (default 1e-4)");
  add("--warmup", &v.warmup, "Linear warmup steps (default: 5% of --steps, at most 200)");
  add("--weight-decay", &v.weight_decay, "AdamW decoupled weight decay, not on norms (default 0.1)");
  add("--beta1", &v.beta1, "AdamW beta1 (default 0.9)");
  add("--beta2", &v.beta2, "AdamW beta2 (default 0.95)");
  add("--grad-clip", &v.grad_clip, "Clip the global gradient norm to this; 0 off (default 1.0)");
  add("--eval-every", &v.eval_every, "Validation loss every N steps; 0 only at the end (default 100)");
  add("--eval-batches", &v.eval_batches, "Validation batches per evaluation (default 16)");
  add("--checkpoint-every", &v.checkpoint_every, "Checkpoint every N steps; 0 only at the end (default 500)");
  add("--keep-checkpoints", &v.keep_checkpoints, "Keep the newest K checkpoints; 0 all (default 3)");
  add("--seed", &v.seed, "Seed of initialization and data order (default 1337)");
  add("--threads", &v.threads, "Threads, at most 256; 0 all cores (default 0)");
  add("--time-limit", &v.time_limit_min, "Stop after this many minutes, with a checkpoint (default: none)");
  add("--async-checkpoint", &v.async_checkpoint,
      "1: checkpoints are staged and written by a background thread while training goes on; 0: the step loop "
      "waits (default 1)");
  add("--spike-factor", &v.spike_factor,
      "Skip the update of a step whose loss exceeds this x the mean of the last 20 steps; 0 off (default 3). "
      "Non-finite loss or gradient norm is always skipped");
  add("--max-bad-steps", &v.max_bad_steps,
      "Skipped steps in a row before rolling back to the last checkpoint and going on past those batches "
      "(default 3)");
  sub->add_flag("--resume", *resume, "Continue the run in --out from its newest valid checkpoint");
  sub->add_flag("--overwrite", *overwrite,
                "Start a new run in --out even though it holds an earlier run, whose checkpoints, metrics.jsonl "
                "and loss.svg are removed first");
  sub->add_flag("--dry-run", *dry_run, "Print parameters, FLOPs and memory for the config; allocate nothing");

  // The flags given, as TrainOptions keys, each checked alone (the run
  // checks them again together with config.json's "training" object).
  auto overrides = [values, options]() -> Result<nlohmann::json> {
    const nlohmann::json all = values->to_json();
    nlohmann::json given = nlohmann::json::object();
    for (const Flag& flag : *options) {
      if (flag.option->count() == 0) continue;
      if (flag.check_text) SC_RETURN_IF_ERROR(flag.check_text());
      given[flag.key] = all[flag.key];
    }
    TrainOptions checked;
    SC_RETURN_IF_ERROR(checked.apply_json(given, kCommandLine));
    return given;
  };
  runner->check = [overrides]() { return overrides().status(); };
  runner->run = [overrides, resume, dry_run, overwrite]() -> Status {
    TrainRequest request;
    request.resume = *resume;
    request.overwrite = *overwrite;
    SC_ASSIGN_OR_RETURN(request.overrides, overrides());
    if (*dry_run) {
      SC_ASSIGN_OR_RETURN(const std::string report, training_dry_run(request));
      std::fputs(report.c_str(), stdout);
      return Status();
    }
    SC_ASSIGN_OR_RETURN(TrainSummary summary, run_training(request));
    if (!summary.reporting_rank) return Status();
    fmt::print("trained to step {}: train loss {:.4f}{}, {:.0f} tokens/s, MFU {:.1f}%\ncheckpoint {}\n",
               summary.last_step, summary.train_loss,
               summary.val_loss >= 0 ? fmt::format(", val loss {:.4f}", summary.val_loss) : "", summary.tokens_per_s,
               100 * summary.mfu, summary.checkpoint);
    return Status();
  };
  return sub;
}

}  // namespace sc::cli
