// A text corpus given to `prepare --input` (a user's own data): the input
// is written as a .jsonl file (one {"text": ...} object per line) when its
// first byte is odd ('{' is), else as a plain .txt file; then listed and split into
// documents as `prepare` does before tokenizing.
#include <string>

#include "data/corpus.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sc::fuzz::run_guarded([&] {
    const bool plain = size == 0 || (data[0] & 1) == 0;
    const std::string path =
        sc::fuzz::write_scratch(plain ? "corpus.txt" : "corpus.jsonl", sc::fuzz::as_text(data, size));
    sc::Result<sc::CorpusListing> listing = sc::list_corpus_files({path});
    if (!listing.ok()) return;
    size_t bytes = 0;
    for (const sc::CorpusFile& file : listing->files) {
      (void)sc::for_each_document(file, [&](std::string_view document) {
        bytes += document.size();
        return sc::Status();
      });
    }
  });
}
