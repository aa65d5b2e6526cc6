// UTF-8 validation for corpus input: a file that is not valid UTF-8 is
// rejected with the byte offset, instead of being tokenized into noise.
#pragma once

#include <cstddef>
#include <string_view>

namespace sc {

// Offset of the first byte that starts an invalid sequence, or npos if the
// whole text is valid UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
size_t find_invalid_utf8(std::string_view text);

}  // namespace sc
