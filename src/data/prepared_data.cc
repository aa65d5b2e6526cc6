#include "data/prepared_data.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <optional>

#include "core/checksum.h"
#include "core/file_util.h"
#include "core/json_reader.h"
#include "data/shard.h"
#include "data/tokenizer.h"

namespace sc {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSplits[] = {"train", "val"};

// The number of shard file `name` of `split`, when it is exactly the name
// shard_file_name gives for it.
std::optional<uint64_t> shard_number(std::string_view name, std::string_view split) {
  if (!name.starts_with(split) || name.substr(split.size(), 1) != "_" || !name.ends_with(".bin")) return std::nullopt;
  std::string_view digits = name.substr(split.size() + 1, name.size() - split.size() - 1 - 4);
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || shard_file_name(split, n) != name) {
    return std::nullopt;
  }
  return n;
}

// The shard files of each split in `dir`, by number: numbered from 0000
// without gaps, and no other file named like a shard.
Result<std::map<std::string_view, std::vector<std::string>>> list_shards(const std::string& dir) {
  std::map<std::string_view, std::map<uint64_t, std::string>> numbered;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    for (std::string_view split : kSplits) {
      if (!name.starts_with(std::string(split) + "_") || !name.ends_with(".bin")) continue;
      const auto n = shard_number(name, split);
      if (!n) return Status::invalid("{}: not a shard name (expected {}_NNNN.bin)", it->path().string(), split);
      numbered[split][*n] = name;
    }
  }
  if (ec) return Status::io_error("{}: cannot list the data directory: {}", dir, ec.message());
  std::map<std::string_view, std::vector<std::string>> names;
  for (std::string_view split : kSplits) {
    std::vector<std::string>& list = names[split];
    for (const auto& [n, name] : numbered[split]) {
      if (n != list.size()) {
        return Status::invalid("{}: {} is missing: {} exists, and the {} shards are numbered from 0000 without gaps",
                               dir, shard_file_name(split, list.size()), name, split);
      }
      list.push_back(name);
    }
  }
  return names;
}

Result<uint64_t> hex64(const JsonReader& reader, std::string_view key) {
  SC_ASSIGN_OR_RETURN(std::string text, reader.string(key, 64));
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (text.size() != 16 || ec != std::errc() || end != text.data() + text.size()) {
    return Status::invalid("{}: '{}' must be 16 hexadecimal digits", reader.source(), key);
  }
  return value;
}

struct ListedShard {
  uint64_t tokens = 0;
  uint64_t checksum = 0;
};

// What prepare.json says the directory holds.
struct Report {
  int format_version = 0;
  uint32_t vocab_size = 0;
  uint64_t tokenizer_checksum = 0;  // version 2
  std::map<std::string_view, std::map<std::string, ListedShard>> shards;  // split -> file -> listing
};

Result<Report> read_report(const std::string& path) {
  auto text = read_file(path);
  if (!text.ok()) {
    if (text.status().code() != StatusCode::kNotFound) return text.status();
    return Status::invalid("{}: no such file; a data directory holds what `supercluster prepare` writes: {}, {} and "
                           "the shards",
                           path, kPrepareReportFile, kPreparedTokenizerFile);
  }
  SC_ASSIGN_OR_RETURN(nlohmann::json json, parse_json(*text, path));
  SC_ASSIGN_OR_RETURN(JsonReader reader, JsonReader::of(json, path));
  Report report;
  SC_ASSIGN_OR_RETURN(int64_t version, reader.integer("format_version", 1, kPrepareReportVersion));
  report.format_version = static_cast<int>(version);
  SC_ASSIGN_OR_RETURN(uint64_t vocab, reader.unsigned_integer("vocab_size", UINT32_MAX));
  report.vocab_size = static_cast<uint32_t>(vocab);
  if (report.format_version >= 2) {
    SC_ASSIGN_OR_RETURN(report.tokenizer_checksum, hex64(reader, "tokenizer_checksum"));
  }
  SC_ASSIGN_OR_RETURN(const nlohmann::json* shards, reader.array("shards"));
  for (size_t i = 0; i < shards->size(); ++i) {
    SC_ASSIGN_OR_RETURN(JsonReader shard, JsonReader::of((*shards)[i], fmt::format("{}: shards[{}]", path, i)));
    SC_ASSIGN_OR_RETURN(std::string file, shard.string("file", 256));
    SC_ASSIGN_OR_RETURN(std::string split, shard.string("split", 16));
    const auto known = std::find(std::begin(kSplits), std::end(kSplits), split);
    if (known == std::end(kSplits) || !shard_number(file, split)) {
      return Status::invalid("{}: shards[{}] is not a train or val shard name", path, i);
    }
    ListedShard listed;
    SC_ASSIGN_OR_RETURN(listed.tokens, shard.unsigned_integer("tokens"));
    SC_ASSIGN_OR_RETURN(listed.checksum, hex64(shard, "checksum"));
    if (!report.shards[*known].emplace(file, listed).second) {
      return Status::invalid("{}: lists {} twice", path, file);
    }
  }
  return report;
}

// Version-1 data records no tokenizer checksum, but only the tokenizer that
// made the tokens decodes a document to text that encodes back to the same
// tokens. A few documents from the start of `shard_path` are tried; the
// tokenizer is refused when fewer than half of them come back (the rare text
// that does not round-trip, such as a literal U+2581, cannot refuse it).
Status check_tokenizer_reproduces(const Tokenizer& tokenizer, const std::string& shard_path,
                                  const std::string& tokenizer_path) {
  constexpr size_t kMaxDocuments = 8, kMaxTokens = 1 << 16;
  SC_ASSIGN_OR_RETURN(ShardReader shard, ShardReader::open(shard_path, tokenizer.vocab_size()));
  const std::span<const uint32_t> tokens = shard.tokens();
  const uint32_t eod = tokenizer.end_of_document_id();
  size_t tried = 0, reproduced = 0, start = 0;
  std::vector<uint32_t> again;
  while (tried < kMaxDocuments && start < tokens.size()) {
    const size_t end = static_cast<size_t>(std::find(tokens.begin() + start, tokens.end(), eod) - tokens.begin());
    if (end == tokens.size() || end > kMaxTokens) break;
    const auto document = tokens.subspan(start, end - start);
    start = end + 1;
    if (document.empty()) continue;
    ++tried;
    auto text = tokenizer.decode(document);
    if (text.ok() && tokenizer.encode(*text, &again).ok() && std::equal(again.begin(), again.end(), document.begin(),
                                                                       document.end())) {
      ++reproduced;
    }
  }
  if (2 * reproduced < tried) {
    return Status::invalid("{} does not reproduce the tokens of {} ({} of {} documents re-encode to the same tokens): "
                           "the tokenizer is not the one these shards were made with; run prepare again",
                           tokenizer_path, shard_path, reproduced, tried);
  }
  return Status();
}

}  // namespace

std::string shard_file_name(std::string_view split, uint64_t index) { return fmt::format("{}_{:04d}.bin", split, index); }

bool is_prepare_output_name(std::string_view name) {
  auto is_output_file = [](std::string_view n) {
    if (n == kPreparedTokenizerFile || n == kPrepareReportFile) return true;
    for (std::string_view split : kSplits) {
      if (shard_number(n, split)) return true;
    }
    return false;
  };
  if (is_output_file(name)) return true;
  // AtomicFileWriter's ".NAME.tmp.PID" and ensure_writable_directory's ".write_probe.PID".
  auto pid_suffix = [](std::string_view rest) {
    return !rest.empty() && rest.find_first_not_of("0123456789") == std::string_view::npos;
  };
  if (name.starts_with(".write_probe.")) return pid_suffix(name.substr(13));
  if (!name.starts_with(".")) return false;
  const size_t tmp = name.rfind(".tmp.");
  return tmp != std::string_view::npos && is_output_file(name.substr(1, tmp - 1)) && pid_suffix(name.substr(tmp + 5));
}

Result<PreparedData> PreparedData::check(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::not_found("{}: data directory does not exist", dir);
  const std::string report_path = (fs::path(dir) / kPrepareReportFile).string();
  const std::string tokenizer_path = (fs::path(dir) / kPreparedTokenizerFile).string();
  SC_ASSIGN_OR_RETURN(Report report, read_report(report_path));
  SC_ASSIGN_OR_RETURN(auto on_disk, list_shards(dir));

  // The shard files are exactly those prepare.json lists.
  for (std::string_view split : kSplits) {
    const auto& listed = report.shards[split];
    for (const std::string& name : on_disk[split]) {
      if (!listed.count(name)) {
        return Status::invalid("{}/{} is not among the shards {} lists (a shard of another prepare?)", dir, name,
                               report_path);
      }
    }
    for (const auto& [name, _] : listed) {
      if (std::find(on_disk[split].begin(), on_disk[split].end(), name) == on_disk[split].end()) {
        return Status::invalid("{}/{} is missing ({} lists it)", dir, name, report_path);
      }
    }
  }

  auto tokenizer_bytes = read_file(tokenizer_path);
  if (!tokenizer_bytes.ok()) {
    if (tokenizer_bytes.status().code() != StatusCode::kNotFound) return tokenizer_bytes.status();
    return Status::invalid("{}: no such file; the shards of {} cannot be read without the tokenizer that made them",
                           tokenizer_path, dir);
  }
  auto tokenizer = Tokenizer::from_serialized(*tokenizer_bytes);
  if (!tokenizer.ok()) return tokenizer.status().with_context(tokenizer_path);
  if (tokenizer->vocab_size() != report.vocab_size) {
    return Status::invalid("{} has a vocabulary of {} tokens, but {} says {}: the tokenizer is not the one the shards "
                           "were made with; run prepare again",
                           tokenizer_path, tokenizer->vocab_size(), report_path, report.vocab_size);
  }
  const uint64_t tokenizer_checksum = checksum64(*tokenizer_bytes);
  if (report.format_version >= 2 && tokenizer_checksum != report.tokenizer_checksum) {
    return Status::invalid("{} has checksum {:016x}, but {} records {:016x}: the tokenizer is not the one the shards "
                           "were made with; run prepare again",
                           tokenizer_path, tokenizer_checksum, report_path, report.tokenizer_checksum);
  }

  PreparedData data;
  data.dir = dir;
  data.format_version = report.format_version;
  data.vocab_size = report.vocab_size;
  data.tokenizer_model = std::move(*tokenizer_bytes);
  const uint32_t shard_version = report.format_version >= 2 ? 2 : 1;
  for (std::string_view split : kSplits) {
    std::vector<std::string>& paths = split == "val" ? data.val_shards : data.train_shards;
    for (const std::string& name : on_disk[split]) {
      const std::string path = (fs::path(dir) / name).string();
      SC_ASSIGN_OR_RETURN(ShardHeader header, read_shard_header(path));
      if (header.vocab_size != report.vocab_size) {
        return Status::invalid("{}: vocab size {}, but {} and {} have {}", path, header.vocab_size, report_path,
                               tokenizer_path, report.vocab_size);
      }
      if (header.version != shard_version) {
        return Status::invalid("{}: shard version {}, but {} (format version {}) was written with version {} shards",
                               path, header.version, report_path, report.format_version, shard_version);
      }
      const ListedShard& listed = report.shards[split].at(name);
      if (header.token_count != listed.tokens || header.payload_checksum != listed.checksum) {
        return Status::invalid("{}: {} tokens with checksum {:016x}, but {} records {} tokens with checksum {:016x} "
                               "(the shard or the report is of another prepare)",
                               path, header.token_count, header.payload_checksum, report_path, listed.tokens,
                               listed.checksum);
      }
      if (shard_version >= 2 && header.tokenizer_checksum != tokenizer_checksum) {
        return Status::invalid("{} was made with the tokenizer of checksum {:016x}, not with {} ({:016x})", path,
                               header.tokenizer_checksum, tokenizer_path, tokenizer_checksum);
      }
      paths.push_back(path);
    }
  }
  if (report.format_version == 1 && !data.train_shards.empty()) {
    SC_RETURN_IF_ERROR(check_tokenizer_reproduces(*tokenizer, data.train_shards.front(), tokenizer_path));
  }
  return data;
}

const std::vector<std::string>& PreparedData::shards(std::string_view split) const {
  static const std::vector<std::string> kNone;
  if (split == "train") return train_shards;
  if (split == "val") return val_shards;
  return kNone;
}

}  // namespace sc
