#include "data/corpus.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <set>

#include "core/file_util.h"
#include "core/json_reader.h"
#include "core/utf8.h"

namespace sc {
namespace fs = std::filesystem;

namespace {

CorpusFormat format_of(const fs::path& path) {
  return path.extension() == ".jsonl" ? CorpusFormat::kJsonl : CorpusFormat::kPlainText;
}

// A prefix is enough to tell text from binary: NUL never occurs in UTF-8 text.
Result<bool> file_looks_binary(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::io_error("{}: cannot open for reading", path);
  char buf[8192];
  size_t n = std::fread(buf, 1, sizeof(buf), f);
  std::fclose(f);
  return looks_binary(std::string_view(buf, n));
}

size_t line_of_offset(std::string_view text, size_t offset) {
  return 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<long>(offset), '\n'));
}

bool is_fortune_separator(std::string_view line) { return line == "%" || line == "%\r"; }

std::string_view trim_newlines(std::string_view s) {
  while (!s.empty() && (s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Fortune format: entries separated by lines holding a single '%'. A file
// without such lines is one document.
Status for_each_plain_document(std::string_view text, const DocumentFn& on_document) {
  size_t doc_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = std::min(text.find('\n', pos), text.size());
    if (is_fortune_separator(text.substr(pos, end - pos))) {
      std::string_view doc = trim_newlines(text.substr(doc_start, pos - doc_start));
      if (!doc.empty()) SC_RETURN_IF_ERROR(on_document(doc));
      doc_start = end + 1;
    }
    pos = end + 1;
  }
  if (doc_start >= text.size()) return Status();
  std::string_view doc = trim_newlines(text.substr(doc_start));
  return doc.empty() ? Status() : on_document(doc);
}

Status for_each_jsonl_document(const std::string& path, std::string_view text, const DocumentFn& on_document) {
  size_t line_number = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string source = fmt::format("{}:{}", path, line_number);
    SC_ASSIGN_OR_RETURN(nlohmann::json record, parse_json(line, source));
    SC_ASSIGN_OR_RETURN(JsonReader reader, JsonReader::of(record, source));
    SC_ASSIGN_OR_RETURN(std::string doc_text, reader.string("text", std::numeric_limits<size_t>::max()));
    std::string_view doc = trim_newlines(doc_text);
    if (!doc.empty()) SC_RETURN_IF_ERROR(on_document(doc));
  }
  return Status();
}

// Collects the regular files under `root`, every directory once: a link
// back to a directory already walked (a loop) is not followed again, and an
// entry that cannot be resolved (a dangling link, a link loop) or is not a
// regular file (a FIFO would block the read) is skipped and listed. Hidden
// files and directories are passed over.
Status walk_directory(const fs::path& root, std::vector<fs::path>* found, std::vector<SkippedEntry>* skipped) {
  std::error_code ec;
  std::set<std::string> walked = {fs::canonical(root, ec).string()};
  if (ec) return Status::invalid("{}: cannot resolve: {}", root.string(), ec.message());
  std::vector<fs::path> pending = {root};
  while (!pending.empty()) {
    const fs::path dir = std::move(pending.back());
    pending.pop_back();
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const fs::path& path = it->path();
      if (path.filename().string().starts_with(".")) continue;
      std::error_code entry_ec;
      const fs::file_status st = fs::status(path, entry_ec);
      if (!fs::exists(st)) {
        skipped->push_back({path.string(), entry_ec && entry_ec != std::errc::no_such_file_or_directory
                                               ? entry_ec.message()
                                               : "dangling symbolic link"});
      } else if (fs::is_directory(st)) {
        const std::string canonical = fs::canonical(path, entry_ec).string();
        if (entry_ec) {
          skipped->push_back({path.string(), entry_ec.message()});
        } else if (!walked.insert(canonical).second) {
          skipped->push_back({path.string(), "link to a directory already walked"});
        } else {
          pending.push_back(path);
        }
      } else if (fs::is_regular_file(st)) {
        found->push_back(path);
      } else {
        skipped->push_back({path.string(), "not a regular file"});
      }
    }
    if (ec) return Status::io_error("{}: cannot list directory: {}", dir.string(), ec.message());
  }
  return Status();
}

}  // namespace

bool looks_binary(std::string_view bytes) { return bytes.find('\0') != std::string_view::npos; }

Result<CorpusListing> list_corpus_files(const std::vector<std::string>& inputs) {
  if (inputs.empty()) return Status::invalid("no --input given: expected text files, JSONL files or directories");
  CorpusListing listing;
  std::set<std::string> seen;
  auto add_file = [&](const fs::path& path, bool named) -> Status {
    std::error_code ec;
    std::string canonical = fs::canonical(path, ec).string();
    if (ec) return Status::not_found("{}: cannot resolve path: {}", path.string(), ec.message());
    if (!seen.insert(canonical).second) return Status();
    if (!fs::is_regular_file(fs::status(canonical, ec))) {
      return Status::invalid("{}: not a regular file; expected UTF-8 text or JSONL", path.string());
    }
    uint64_t size = fs::file_size(canonical, ec);
    if (ec) return Status::io_error("{}: cannot stat: {}", path.string(), ec.message());
    if (size == 0) {
      if (named) return Status::invalid("{}: input file is empty", path.string());
      return Status();
    }
    SC_ASSIGN_OR_RETURN(bool binary, file_looks_binary(canonical));
    if (binary) {
      if (named) return Status::invalid("{}: binary file (contains NUL bytes); expected UTF-8 text or JSONL", path.string());
      listing.skipped.push_back({path.string(), "binary (contains NUL bytes)"});
      return Status();
    }
    listing.files.push_back({path.string(), size, format_of(path)});
    return Status();
  };

  for (const std::string& input : inputs) {
    std::error_code ec;
    fs::file_status st = fs::status(input, ec);
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return Status::invalid("{}: cannot resolve: {}", input, ec.message());
    }
    if (!fs::exists(st)) return Status::not_found("{}: input does not exist", input);
    if (fs::is_directory(st)) {
      std::vector<fs::path> found;
      SC_RETURN_IF_ERROR(walk_directory(input, &found, &listing.skipped));
      std::sort(found.begin(), found.end());  // directory order is not deterministic
      for (const fs::path& p : found) SC_RETURN_IF_ERROR(add_file(p, /*named=*/false));
      if (found.empty()) return Status::invalid("{}: directory holds no files", input);
    } else {
      SC_RETURN_IF_ERROR(add_file(input, /*named=*/true));
    }
  }
  if (listing.files.empty()) return Status::invalid("no text files found in the inputs (all empty or binary)");
  return listing;
}

Status for_each_document(const CorpusFile& file, const DocumentFn& on_document) {
  SC_ASSIGN_OR_RETURN(std::string text, read_file(file.path));
  if (looks_binary(text)) {
    return Status::invalid("{}: binary file (contains NUL bytes); expected UTF-8 text or JSONL", file.path);
  }
  size_t bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos) {
    return Status::invalid("{}: invalid UTF-8 at byte offset {} (line {})", file.path, bad, line_of_offset(text, bad));
  }
  if (file.format == CorpusFormat::kJsonl) return for_each_jsonl_document(file.path, text, on_document);
  return for_each_plain_document(text, on_document);
}

}  // namespace sc
