// The command line: words separated by NUL or newline bytes, parsed by
// CLI11 and every subcommand's flag check (type, finiteness, range), as
// main() does before running anything. Nothing is run, so no file is read
// or written whatever the words say.
#include <string>
#include <vector>

#include "cli/app.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kMaxWords = 64;
  return sc::fuzz::run_guarded([&] {
    std::vector<std::string> words(1);
    for (char c : sc::fuzz::as_text(data, size)) {
      if (c == '\0' || c == '\n') {
        if (words.size() == kMaxWords) break;
        words.emplace_back();
      } else {
        words.back() += c;
      }
    }
    (void)sc::cli::parse_and_check(words);
  });
}
