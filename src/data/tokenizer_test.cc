#include "data/tokenizer.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace sc {
namespace {

const Tokenizer& shared_tokenizer() {
  static Tokenizer* tokenizer = [] {
    std::vector<std::string> texts;
    std::string text = testing::multilingual_text();
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find("\n\n", pos);
      if (end == std::string::npos) end = text.size();
      texts.push_back(text.substr(pos, end - pos));
      pos = end + 2;
    }
    auto model = Tokenizer::train(texts, {.vocab_size = 400, .num_threads = 2});
    EXPECT_TRUE(model.ok()) << model.status().message();
    auto t = Tokenizer::from_serialized(*model);
    EXPECT_TRUE(t.ok());
    return new Tokenizer(std::move(t).value());
  }();
  return *tokenizer;
}

void expect_round_trip(const std::string& text) {
  const Tokenizer& tok = shared_tokenizer();
  std::vector<uint32_t> ids;
  ASSERT_TRUE(tok.encode(text, &ids).ok());
  auto decoded = tok.decode(ids);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, text);
  // Streaming pieces concatenate to the same bytes, but for the one space
  // that SentencePiece's dummy prefix puts in front of every text.
  std::string streamed;
  for (uint32_t id : ids) streamed += tok.piece_text(id);
  ASSERT_EQ(streamed.substr(0, 1), " ");
  streamed.erase(0, 1);
  EXPECT_EQ(streamed, text);
}

TEST(Tokenizer, RoundTripsEveryLanguage) {
  EXPECT_EQ(shared_tokenizer().vocab_size(), 400u);
  expect_round_trip("The quick brown fox jumps over the lazy dog.");
  expect_round_trip("Grüße aus München: Straße, Größe, Äpfel und Öl.");
  expect_round_trip("Città, università e caffè: perché più?");
  expect_round_trip("नमस्ते दुनिया, यह एक परीक्षण वाक्य है।");
}

TEST(Tokenizer, RoundTripsUnseenCharactersAndLayout) {
  // Characters never seen in training go through byte fallback, not <unk>.
  expect_round_trip("日本語のテキスト and emoji 😀 ✓");
  expect_round_trip("  two leading spaces\n\ttab, newline\n\nblank line  ");
  expect_round_trip("digits 1234567890 and 3.14159");
}

TEST(Tokenizer, SplitsDigits) {
  const Tokenizer& tok = shared_tokenizer();
  std::vector<uint32_t> ids;
  ASSERT_TRUE(tok.encode("12345", &ids).ok());
  size_t digit_tokens = 0;
  for (uint32_t id : ids) {
    std::string piece = tok.piece_text(id);
    if (piece.find_first_of("0123456789") != std::string::npos) {
      EXPECT_EQ(piece.find_first_not_of(" "), piece.size() - 1) << "piece '" << piece << "' holds more than one digit";
      ++digit_tokens;
    }
  }
  EXPECT_EQ(digit_tokens, 5u);
}

TEST(Tokenizer, SpecialIds) {
  EXPECT_EQ(shared_tokenizer().end_of_document_id(), 2u);
  EXPECT_EQ(shared_tokenizer().begin_of_document_id(), 1u);
  EXPECT_FALSE(shared_tokenizer().decode(std::vector<uint32_t>{5, 400}).ok());
}

TEST(Tokenizer, VocabLargerThanCorpusSupportsIsAClearError) {
  auto model = Tokenizer::train({"tiny corpus", "with few words"}, {.vocab_size = 5000, .num_threads = 1});
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("vocab size 5000 is larger than this corpus supports (at most "), std::string::npos)
      << model.status().message();
}

TEST(Tokenizer, LoadRejectsGarbage) {
  testing::TempDir dir;
  testing::write_text(dir.file("tokenizer.model"), "not a model");
  auto t = Tokenizer::load(dir.file("tokenizer.model"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("tokenizer.model"), std::string::npos);
}

// Found by fuzz/tokenizer_fuzzer.cc: a model proto whose second piece
// starts with a NUL byte made SentencePiece's double-array trie throw
// ("zero-length key") out of LoadFromSerializedProto, which aborted
// `generate` and `train` instead of naming the file.
TEST(Tokenizer, AModelThatMakesSentencePieceThrowIsAnError) {
  const std::string model(
      "\x0a\x0e\x0a\x05\x3c\x75\x6e\x6b\x3e\x15\x00\x00\x00\x00\x18\x02\x0a\x0c\x0a\x03\x00\x73\x18\x18"
      "\x18\xe8\x01\x18\x18\x18\x18\x00",
      32);
  testing::TempDir dir;
  testing::write_text(dir.file("tokenizer.model"), model);
  auto t = Tokenizer::load(dir.file("tokenizer.model"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("tokenizer.model"), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find("not a SentencePiece model"), std::string::npos) << t.status().message();
}

// prepare accepts up to 256 threads; SentencePiece trains with at most 128.
TEST(Tokenizer, TrainsWithMoreThreadsThanSentencePieceTakes) {
  std::vector<std::string> lines;
  const std::string text = testing::multilingual_text(4);
  for (size_t pos = 0, end; pos < text.size(); pos = end + 1) {
    end = std::min(text.find('\n', pos), text.size());
    if (end > pos) lines.push_back(text.substr(pos, end - pos));
  }
  auto model = Tokenizer::train(lines, {.vocab_size = 400, .num_threads = 256});
  EXPECT_TRUE(model.ok()) << model.status().message();
}

}  // namespace
}  // namespace sc
