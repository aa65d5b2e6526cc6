// A data directory as `prepare` leaves it: prepare.json, tokenizer.model and
// the shards of each split. check() proves they belong together before any of
// it is used, so a tokenizer, a shard or a report of another prepare is
// refused naming the files (docs/shard_format.md, "Checking a data directory").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sc {

// What `prepare` writes into its output directory; the trainer copies the
// tokenizer into each checkpoint.
inline constexpr const char* kPreparedTokenizerFile = "tokenizer.model";
inline constexpr const char* kPrepareReportFile = "prepare.json";
// prepare.json's format_version: 2 records the tokenizer's checksum, as the
// version-2 shards do; version 1 (shard version 1) is still read.
inline constexpr int kPrepareReportVersion = 2;

// "train_0000.bin": the shard of `split` numbered `index` (4 digits at least).
std::string shard_file_name(std::string_view split, uint64_t index);

// True for the names prepare writes into its output directory, and the
// hidden temporaries of its atomic writes: what replacing it may remove.
bool is_prepare_output_name(std::string_view name);

struct PreparedData {
  std::string dir;
  int format_version = 0;  // prepare.json's
  uint32_t vocab_size = 0;
  std::vector<std::string> train_shards, val_shards;  // paths, by number
  std::string tokenizer_model;  // the bytes of tokenizer.model that were checked against the shards

  // Checks that tokenizer.model, prepare.json and every shard of both splits
  // come from one prepare: the shards are numbered from 0000 without gaps
  // and are exactly those prepare.json lists, with its token counts and
  // checksums; the tokenizer, the report and every shard header agree on the
  // vocabulary and (version 2) on the tokenizer's checksum. Version-1 data,
  // which has no tokenizer checksum, must instead re-encode the first
  // documents of train_0000.bin to the same tokens. Reads the headers and the
  // tokenizer, not the payloads (the loader checks those).
  static Result<PreparedData> check(const std::string& dir);

  // The shards of "train" or "val" (none of another split).
  const std::vector<std::string>& shards(std::string_view split) const;
};

}  // namespace sc
