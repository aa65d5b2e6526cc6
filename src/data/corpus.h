// The text a model is trained on: plain text files, directories of them
// (recursively), and JSONL files with a "text" field. Fortune files (lines
// holding only '%' between entries) are split into one document per entry.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sc {

enum class CorpusFormat { kPlainText, kJsonl };

struct CorpusFile {
  std::string path;
  uint64_t size_bytes = 0;
  CorpusFormat format = CorpusFormat::kPlainText;
};

// An entry of an input directory that is not read, and why.
struct SkippedEntry {
  std::string path;
  std::string reason;
};

struct CorpusListing {
  std::vector<CorpusFile> files;       // sorted, each file once (symlinks resolved)
  std::vector<SkippedEntry> skipped;   // met while walking directories
};

// Expands inputs into files. A named input that is missing, empty, binary or
// cannot be resolved (a symbolic-link loop) is an error. Walking a directory
// (each directory once, so a link back to one already walked is not
// followed), an entry is skipped and listed when it is binary (fortune
// directories hold binary .dat index files beside the text), not a regular
// file, or cannot be resolved (a dangling link, a link loop); hidden entries
// are passed over.
Result<CorpusListing> list_corpus_files(const std::vector<std::string>& inputs);

// Calls `on_document` for each non-empty document of the file, in order.
// Fails with the file, line or byte offset at fault on invalid UTF-8 or bad JSONL.
using DocumentFn = std::function<Status(std::string_view document)>;
Status for_each_document(const CorpusFile& file, const DocumentFn& on_document);

// True if the bytes look binary (contain a NUL byte).
bool looks_binary(std::string_view bytes);

}  // namespace sc
