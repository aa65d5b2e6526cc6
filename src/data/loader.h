// Deterministic, resumable batches of (input, target) token windows from the
// shards of one split. The token stream (shards in name order) is cut into
// windows of T+1 tokens that overlap by one; each epoch visits the windows in
// a fresh pseudo-random order from (seed, epoch). That one sequence is the
// same for any number of ranks: a data-parallel step takes the next
// G = ranks x accumulation micro-batches of it, and rank r reads its
// micro-batches by offset (read_batch_at), so the data of global micro-batch
// g never depends on how many ranks share the step. The cursor (epoch,
// position) is all the state: save it in a checkpoint, restore it (on any
// number of ranks), and the same batches follow.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"
#include "data/shard.h"

namespace sc {

struct LoaderOptions {
  uint32_t batch_size = 1;  // B: windows per batch on this rank
  uint32_t seq_len = 256;   // T
  uint64_t seed = 0;
  bool shuffle = true;  // false: windows in stream order (evaluation)
  std::optional<uint32_t> expected_vocab_size;
};

struct LoaderCursor {
  uint64_t epoch = 0;
  uint64_t position = 0;  // windows of the epoch's sequence already served (by all ranks)
  uint64_t data_fingerprint = 0;  // which shards (by checksum) this cursor belongs to
  uint32_t seq_len = 0;

  nlohmann::json to_json() const;
  static Result<LoaderCursor> from_json(const nlohmann::json& j);
  bool operator==(const LoaderCursor&) const = default;
};

class DataLoader {
 public:
  // Opens the shards of `split` ("train" or "val") in the data directory
  // `dir`, after checking the directory as a whole (PreparedData::check:
  // tokenizer, prepare.json, numbering, vocabulary) and then each shard
  // (checksum, token range, the expected vocabulary). A split without
  // shards is kNotFound.
  static Result<DataLoader> open(const std::string& dir, const std::string& split, const LoaderOptions& options);
  // The given shards, in order, as one stream: each shard checked, no more.
  static Result<DataLoader> open_shards(const std::vector<std::string>& paths, const LoaderOptions& options);

  // Fills inputs[B*T] and targets[B*T] (targets are inputs shifted by one)
  // and moves past them.
  void next_batch(uint32_t* inputs, uint32_t* targets);
  // The B windows that start `offset` windows past the cursor, without
  // moving it (a rank's micro-batch inside a data-parallel step).
  void read_batch_at(uint64_t offset, uint32_t* inputs, uint32_t* targets);
  // Moves the cursor `windows` ahead (past a whole data-parallel step).
  void advance(uint64_t windows);

  LoaderCursor cursor() const;
  Status restore(const LoaderCursor& cursor);
  // Back to the first batch of epoch 0 (evaluation reads the same batches each time).
  void rewind() {
    epoch_ = 0;
    position_ = 0;
  }

  // The window index (into the token stream) served at (epoch, position).
  uint64_t window_at(uint64_t epoch, uint64_t position) const;
  // The tokenizer.model bytes checked against these shards when the loader
  // was opened from a data directory (empty for open_shards): what a
  // checkpoint must carry, even if the directory is replaced meanwhile.
  const std::string& tokenizer_model() const { return tokenizer_model_; }
  uint64_t total_windows() const { return total_windows_; }
  uint64_t total_tokens() const { return prefix_tokens_.back(); }
  uint32_t vocab_size() const { return vocab_size_; }
  const LoaderOptions& options() const { return options_; }

 private:
  std::string tokenizer_model_;
  DataLoader() = default;
  void copy_tokens(uint64_t global_start, size_t count, uint32_t* out) const;

  LoaderOptions options_;
  std::vector<ShardReader> shards_;
  std::vector<uint64_t> prefix_tokens_;  // prefix_tokens_[i] = tokens before shard i; back() = total
  uint32_t vocab_size_ = 0;
  uint64_t fingerprint_ = 0;
  uint64_t total_windows_ = 0;
  uint64_t epoch_ = 0;
  uint64_t position_ = 0;
  std::vector<uint32_t> window_buffer_;
};

}  // namespace sc
