// SentencePiece BPE tokenizer (libsentencepiece): trained by `prepare`, saved
// as tokenizer.model, loaded by the trainer and the generator.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace sc {

struct TokenizerTrainOptions {
  uint32_t vocab_size = 8192;
  uint32_t num_threads = 2;
  // Training text is given in pieces no longer than this (SentencePiece skips longer ones).
  uint32_t max_piece_bytes = 8192;
};

class Tokenizer {
 public:
  // Trains BPE as Grok-1's tokenizer is set up: byte fallback (no unknown
  // tokens, any UTF-8 round-trips), digits split, no text normalization (the
  // decoded text is the original). Ids: 0 <unk>, 1 <s>, 2 </s> (end of document).
  // Returns the serialized model (the bytes of tokenizer.model).
  static Result<std::string> train(const std::vector<std::string>& texts, const TokenizerTrainOptions& options);
  static Result<Tokenizer> from_serialized(const std::string& model_bytes);
  static Result<Tokenizer> load(const std::string& path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Thread-safe: the processor is read-only after loading.
  Status encode(std::string_view text, std::vector<uint32_t>* ids) const;
  Result<std::string> decode(std::span<const uint32_t> ids) const;
  // One token's text, bytes of byte-fallback pieces included; for streaming output.
  std::string piece_text(uint32_t id) const;
  uint32_t vocab_size() const;
  uint32_t end_of_document_id() const;
  uint32_t begin_of_document_id() const;

 private:
  explicit Tokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor);
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace sc
