// Stop strings (the API's `stop`) found in generated text as it streams: the
// end of the text that could still grow into a stop string, or that is an
// incomplete UTF-8 character, is held back, so no client ever sees part of a
// stop string or half a character.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sc {

class StopStringMatcher {
 public:
  // Empty strings are ignored (they would match everywhere).
  explicit StopStringMatcher(std::vector<std::string> stops = {});

  // Adds the next token's text; returns the text now safe to show. Once a
  // stop string appears, stopped() is true, the text before it has been
  // returned, and it and everything after it never is.
  std::string add(std::string_view text);
  bool stopped() const { return stopped_; }

  // Generation ended without a stop: the text held back, now final.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // added, not yet returned
  bool stopped_ = false;
};

}  // namespace sc
