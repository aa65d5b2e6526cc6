#include "data/tokenizer.h"

#include <charconv>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <exception>
#include <unordered_map>

#include "core/file_util.h"
#include "core/json_reader.h"

namespace sc {
namespace {

class VectorSentenceIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorSentenceIterator(const std::vector<std::string>& texts) : texts_(texts) {}
  bool done() const override { return index_ >= texts_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return texts_[index_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  const std::vector<std::string>& texts_;
  size_t index_ = 0;
};

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor)
    : processor_(std::move(processor)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<std::string> Tokenizer::train(const std::vector<std::string>& texts, const TokenizerTrainOptions& options) {
  if (texts.empty()) return Status::invalid("tokenizer training: no text to train on");
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"character_coverage", "0.9995"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"max_sentence_length", std::to_string(options.max_piece_bytes)},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      // SentencePiece refuses more than 128 threads.
      {"num_threads", std::to_string(std::clamp<uint32_t>(options.num_threads, 1, 128))},
      {"minloglevel", "2"},
  };
  VectorSentenceIterator iterator(texts);
  std::string model;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &iterator, &model);
  if (!status.ok()) {
    std::string message = status.ToString();
    // SentencePiece words this "Vocabulary size is too large" or "... too high", then "<= N".
    if (message.find("Vocabulary size") != std::string::npos && message.find("<= ") != std::string::npos) {
      std::string limit = message.substr(message.find("<= ") + 3);
      limit = limit.substr(0, limit.find_first_not_of("0123456789"));
      if (limit.empty()) {  // the corpus cannot even hold the required characters
        return Status::invalid("vocab size {} does not fit this corpus ({})", options.vocab_size, message);
      }
      return Status::invalid("vocab size {} is larger than this corpus supports (at most {})", options.vocab_size,
                             limit);
    }
    return Status::internal("tokenizer training failed: {}", message);
  }
  return model;
}

Result<Tokenizer> Tokenizer::from_serialized(const std::string& model_bytes) {
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  // SentencePiece reports most bad models as a status but throws for some
  // (darts_clone's "zero-length key" on an empty piece: found by
  // fuzz/tokenizer_fuzzer.cc); either is a bad file, not a crash.
  try {
    auto status = processor->LoadFromSerializedProto(model_bytes);
    if (!status.ok()) return Status::corruption("not a SentencePiece model: {}", status.ToString());
  } catch (const std::exception& e) {
    return Status::corruption("not a SentencePiece model: {}", text_excerpt(e.what(), 200));
  }
  return Tokenizer(std::move(processor));
}

Result<Tokenizer> Tokenizer::load(const std::string& path) {
  SC_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  auto tokenizer = from_serialized(bytes);
  if (!tokenizer.ok()) return tokenizer.status().with_context(path);
  return tokenizer;
}

Status Tokenizer::encode(std::string_view text, std::vector<uint32_t>* ids) const {
  std::vector<int> raw;
  auto status = processor_->Encode(text, &raw);
  if (!status.ok()) return Status::internal("tokenizer encode failed: {}", status.ToString());
  ids->assign(raw.begin(), raw.end());
  return Status();
}

Result<std::string> Tokenizer::decode(std::span<const uint32_t> ids) const {
  std::vector<int> raw(ids.begin(), ids.end());
  for (int id : raw) {
    if (id < 0 || static_cast<uint32_t>(id) >= vocab_size()) {
      return Status::invalid("token id {} is outside the vocabulary of {}", id, vocab_size());
    }
  }
  std::string text;
  auto status = processor_->Decode(raw, &text);
  if (!status.ok()) return Status::internal("tokenizer decode failed: {}", status.ToString());
  return text;
}

std::string Tokenizer::piece_text(uint32_t id) const {
  if (processor_->IsByte(static_cast<int>(id))) {
    // Pieces "<0xAB>": the raw byte. A multi-byte character arrives over several tokens.
    // A crafted tokenizer.model can call any piece a byte: anything but "<0xAB>" is no byte.
    const std::string& piece = processor_->IdToPiece(static_cast<int>(id));
    unsigned value = 0;
    if (piece.size() != 6 || !piece.starts_with("<0x") || piece.back() != '>' ||
        std::from_chars(piece.data() + 3, piece.data() + 5, value, 16).ptr != piece.data() + 5) {
      return "";
    }
    return std::string(1, static_cast<char>(value));
  }
  if (processor_->IsControl(static_cast<int>(id)) || processor_->IsUnknown(static_cast<int>(id))) return "";
  std::string piece = processor_->IdToPiece(static_cast<int>(id));
  std::string out;
  static const std::string kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      out += ' ';
      i += kSpaceMark.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

uint32_t Tokenizer::vocab_size() const { return static_cast<uint32_t>(processor_->GetPieceSize()); }
uint32_t Tokenizer::end_of_document_id() const { return static_cast<uint32_t>(processor_->eos_id()); }
uint32_t Tokenizer::begin_of_document_id() const { return static_cast<uint32_t>(processor_->bos_id()); }

}  // namespace sc
