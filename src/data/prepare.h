// `supercluster prepare`: corpus files -> tokenizer.model + token shards +
// prepare.json. Two passes over the input: the first validates every file
// and gathers the tokenizer's training text, the second encodes documents in
// parallel and streams them into shards, so memory stays bounded by the
// tokenizer sample, not by the corpus. All of it is written into a staging
// directory that replaces the output only when everything succeeded
// (StagedDirectory), so a failed or killed prepare leaves the previous
// output as it was.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "core/thread_pool.h"
#include "data/prepared_data.h"

namespace sc {

struct PrepareOptions {
  std::vector<std::string> inputs;
  std::string out_dir;
  uint32_t vocab_size = 8192;
  double val_fraction = 0.01;
  uint64_t seed = 1337;
  uint32_t num_threads = 0;  // 0: all cores; at most kMaxThreads (core/thread_pool.h)
  uint64_t shard_tokens = 100'000'000;  // a new shard starts past this many tokens
  uint64_t tokenizer_sample_bytes = 256ull << 20;  // text the tokenizer trains on, at most
};

struct PrepareSummary {
  nlohmann::json report;  // what prepare.json holds
};

// The options alone (sizes, fractions, threads); touches no file.
Status check_prepare_options(const PrepareOptions& options);
Result<PrepareSummary> run_prepare(const PrepareOptions& options);

// Deterministic train/val assignment of document `index` under `seed`.
bool is_validation_document(uint64_t index, uint64_t seed, double val_fraction);

}  // namespace sc
