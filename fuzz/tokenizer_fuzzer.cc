// tokenizer.model (a SentencePiece model proto from `prepare`, carried in
// every checkpoint): load, then encode and decode text, and decode ids taken
// from the input itself (any id, in range or not).
#include <cstring>
#include <vector>

#include "data/tokenizer.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sc::fuzz::run_guarded([&] {
    sc::Result<sc::Tokenizer> tokenizer = sc::Tokenizer::from_serialized(std::string(sc::fuzz::as_text(data, size)));
    if (!tokenizer.ok()) return;
    std::vector<uint32_t> ids;
    if (tokenizer->encode("Grüße, 12345 tokens: the quick brown fox.\n", &ids).ok()) (void)tokenizer->decode(ids);
    std::vector<uint32_t> raw(size / sizeof(uint32_t));
    if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * sizeof(uint32_t));
    (void)tokenizer->decode(raw);
  });
}
