#include "data/loader.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/json_reader.h"
#include "data/permutation.h"
#include "data/prepared_data.h"

namespace sc {

nlohmann::json LoaderCursor::to_json() const {
  return {{"epoch", epoch},
          {"position", position},
          {"data_fingerprint", data_fingerprint},
          {"seq_len", seq_len}};
}

Result<LoaderCursor> LoaderCursor::from_json(const nlohmann::json& j) {
  SC_ASSIGN_OR_RETURN(const JsonReader reader, JsonReader::of(j, "data cursor"));
  LoaderCursor c;
  SC_ASSIGN_OR_RETURN(c.epoch, reader.unsigned_integer("epoch"));
  SC_ASSIGN_OR_RETURN(c.position, reader.unsigned_integer("position"));
  SC_ASSIGN_OR_RETURN(c.data_fingerprint, reader.unsigned_integer("data_fingerprint"));
  SC_ASSIGN_OR_RETURN(const uint64_t seq_len, reader.unsigned_integer("seq_len", UINT32_MAX));
  c.seq_len = static_cast<uint32_t>(seq_len);
  // A cursor of the per-rank sequences of before: every rank had served
  // `position` windows of its own slice, so the world had served
  // position · world_size windows of the epoch.
  if (reader.has("world_size")) {
    SC_ASSIGN_OR_RETURN(const int64_t ranks, reader.integer("world_size", 1, UINT32_MAX));
    const uint64_t world_size = static_cast<uint64_t>(ranks);
    if (c.position > UINT64_MAX / world_size) {
      return Status::invalid("data cursor: 'position' {} times 'world_size' {} does not fit in 64 bits", c.position,
                             world_size);
    }
    c.position *= world_size;
  }
  return c;
}

Result<DataLoader> DataLoader::open(const std::string& dir, const std::string& split, const LoaderOptions& options) {
  SC_ASSIGN_OR_RETURN(const PreparedData data, PreparedData::check(dir));
  if (data.shards(split).empty()) {
    return Status::not_found("{}: no '{}' shards (run `supercluster prepare` first)", dir, split);
  }
  SC_ASSIGN_OR_RETURN(DataLoader loader, open_shards(data.shards(split), options));
  loader.tokenizer_model_ = data.tokenizer_model;
  return loader;
}

Result<DataLoader> DataLoader::open_shards(const std::vector<std::string>& paths, const LoaderOptions& options) {
  if (options.batch_size == 0 || options.seq_len == 0) {
    return Status::invalid("data loader: batch size and sequence length must be positive");
  }
  if (paths.empty()) return Status::invalid("data loader: no shards given");
  DataLoader loader;
  loader.options_ = options;
  loader.prefix_tokens_.push_back(0);
  std::optional<uint32_t> vocab = options.expected_vocab_size;
  std::vector<uint64_t> checksums;
  for (const std::string& path : paths) {
    SC_ASSIGN_OR_RETURN(ShardReader shard, ShardReader::open(path, vocab));
    vocab = shard.header().vocab_size;  // every later shard must agree with the first
    checksums.push_back(shard.header().payload_checksum);
    loader.prefix_tokens_.push_back(loader.prefix_tokens_.back() + shard.header().token_count);
    loader.shards_.push_back(std::move(shard));
  }
  loader.vocab_size_ = *vocab;
  loader.fingerprint_ = checksum64(checksums.data(), checksums.size() * sizeof(uint64_t));
  const uint64_t total = loader.prefix_tokens_.back();
  loader.total_windows_ = total > 0 ? (total - 1) / options.seq_len : 0;
  if (loader.total_windows_ == 0) {
    return Status::invalid("{}: {} tokens in {} shard(s), too few for one window of {}+1 tokens", paths.front(),
                           total, paths.size(), options.seq_len);
  }
  loader.window_buffer_.resize(options.seq_len + 1);
  return loader;
}

uint64_t DataLoader::window_at(uint64_t epoch, uint64_t position) const {
  if (!options_.shuffle) return position;
  IndexPermutation permutation(total_windows_, mix64(options_.seed) ^ mix64(epoch + 0x5EED));
  return permutation(position);
}

void DataLoader::copy_tokens(uint64_t global_start, size_t count, uint32_t* out) const {
  // Shard holding global_start: the last prefix <= global_start.
  size_t shard = static_cast<size_t>(
      std::upper_bound(prefix_tokens_.begin(), prefix_tokens_.end(), global_start) - prefix_tokens_.begin() - 1);
  uint64_t offset = global_start - prefix_tokens_[shard];
  while (count > 0) {
    auto tokens = shards_[shard].tokens();
    size_t take = std::min<uint64_t>(count, tokens.size() - offset);
    std::copy_n(tokens.data() + offset, take, out);
    out += take;
    count -= take;
    ++shard;
    offset = 0;
  }
}

void DataLoader::read_batch_at(uint64_t offset, uint32_t* inputs, uint32_t* targets) {
  const uint32_t T = options_.seq_len;
  for (uint32_t b = 0; b < options_.batch_size; ++b) {
    const uint64_t ahead = position_ + offset + b;
    copy_tokens(window_at(epoch_ + ahead / total_windows_, ahead % total_windows_) * T, T + 1, window_buffer_.data());
    std::copy_n(window_buffer_.data(), T, inputs + static_cast<size_t>(b) * T);
    std::copy_n(window_buffer_.data() + 1, T, targets + static_cast<size_t>(b) * T);
  }
}

void DataLoader::advance(uint64_t windows) {
  const uint64_t ahead = position_ + windows;
  epoch_ += ahead / total_windows_;
  position_ = ahead % total_windows_;
}

void DataLoader::next_batch(uint32_t* inputs, uint32_t* targets) {
  read_batch_at(0, inputs, targets);
  advance(options_.batch_size);
}

LoaderCursor DataLoader::cursor() const {
  return {epoch_, position_, fingerprint_, options_.seq_len};
}

Status DataLoader::restore(const LoaderCursor& cursor) {
  if (cursor.data_fingerprint != fingerprint_) {
    return Status::invalid("data cursor belongs to other data (fingerprint {:016x}, these shards have {:016x})",
                           cursor.data_fingerprint, fingerprint_);
  }
  if (cursor.seq_len != options_.seq_len) {
    return Status::invalid("data cursor was saved with seq_len {}; this run has seq_len {}", cursor.seq_len,
                           options_.seq_len);
  }
  // A position at or past the end of the epoch (old cursors wrapped lazily)
  // is the start of a later one.
  epoch_ = cursor.epoch + cursor.position / total_windows_;
  position_ = cursor.position % total_windows_;
  return Status();
}

}  // namespace sc
