#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "cli/flag_checks.h"
#include "core/thread_pool.h"
#include "core/log.h"
#include "data/prepare.h"

namespace sc::cli {

CLI::App* add_prepare_command(CLI::App& root, CommandRunner* runner) {
  auto options = std::make_shared<PrepareOptions>();
  struct Flags {
    int64_t threads = 0;  // signed: "-1" is an error, not 2^32 - 1
    CLI::Option *vocab_size, *seed, *threads_option, *shard_tokens;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = root.add_subcommand("prepare", "Train a tokenizer and write token shards from text");
  sub->add_option("--input", options->inputs, "Text files, JSONL files (field \"text\") or directories")
      ->required()
      ->expected(1, -1);
  sub->add_option("--out", options->out_dir, "Output directory")->required();
  f->vocab_size = sub->add_option("--vocab-size", options->vocab_size, "Tokenizer vocabulary size")
                      ->capture_default_str();
  sub->add_option("--val-fraction", options->val_fraction, "Fraction of documents held out for validation")
      ->capture_default_str();
  f->seed = sub->add_option("--seed", options->seed, "Seed of the train/val split")->capture_default_str();
  f->threads_option = sub->add_option("--threads", f->threads, "Threads, at most 256 (0: all cores)")
                          ->capture_default_str();
  f->shard_tokens = sub->add_option("--shard-tokens", options->shard_tokens, "Tokens per shard before a new one starts")
                        ->capture_default_str();

  runner->check = [options, f]() -> Status {
    SC_RETURN_IF_ERROR(check_integer_text<uint32_t>(*f->vocab_size, "an integer in [0, 4294967295]"));
    SC_RETURN_IF_ERROR(check_integer_text<uint64_t>(*f->seed, "an integer in [0, 18446744073709551615]"));
    SC_RETURN_IF_ERROR(check_integer_text<uint64_t>(*f->shard_tokens, "an integer in [1, 18446744073709551615]"));
    SC_RETURN_IF_ERROR(check_integer_text<int64_t>(*f->threads_option, "an integer in [0, 256]"));
    SC_ASSIGN_OR_RETURN(const size_t threads, threads_from_flag(f->threads, "--threads"));
    options->num_threads = static_cast<uint32_t>(threads);
    return check_prepare_options(*options);
  };
  runner->run = [options]() -> Status {
    SC_ASSIGN_OR_RETURN(PrepareSummary summary, run_prepare(*options));
    const auto& r = summary.report;
    const uint64_t train_tokens = r["tokens"]["train"], val_tokens = r["tokens"]["val"];
    fmt::print(
        "prepared {}\n"
        "  inputs      {} files, {:.1f} MB, {} documents ({} train / {} val)\n"
        "  tokenizer   BPE, {} tokens, {:.2f} bytes per token -> tokenizer.model\n"
        "  shards      {} ({} train tokens, {} val tokens)\n"
        "  time        {:.1f}s total: read {:.1f}s, tokenizer {:.1f}s, encode {:.1f}s ({:.0f} tokens/s)\n",
        options->out_dir, r["inputs"].size(), r["bytes_read"].get<double>() / 1e6,
        r["documents"]["train"].get<uint64_t>() + r["documents"]["val"].get<uint64_t>(),
        r["documents"]["train"].get<uint64_t>(), r["documents"]["val"].get<uint64_t>(), r["vocab_size"].get<uint32_t>(),
        r["bytes_per_token"].get<double>(), r["shards"].size(), train_tokens, val_tokens,
        r["elapsed_s"]["total"].get<double>(), r["elapsed_s"]["read"].get<double>(),
        r["elapsed_s"]["tokenizer"].get<double>(), r["elapsed_s"]["encode"].get<double>(),
        r["encode_tokens_per_s"].get<double>());
    return Status();
  };
  return sub;
}

}  // namespace sc::cli
