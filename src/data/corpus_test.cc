#include "data/corpus.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <map>

#include "test_util.h"

namespace sc {
namespace {

std::vector<std::string> documents_of(const CorpusFile& file, Status* status = nullptr) {
  std::vector<std::string> docs;
  Status s = for_each_document(file, [&](std::string_view d) {
    docs.emplace_back(d);
    return Status();
  });
  if (status) *status = s;
  else EXPECT_TRUE(s.ok()) << s.message();
  return docs;
}

TEST(Corpus, FortuneFilesSplitAtPercentLines) {
  testing::TempDir dir;
  testing::write_text(dir.file("fortunes"), "First fortune,\ntwo lines.\n%\nSecond: 50% off\n%\n%\nThird\n");
  auto docs = documents_of({dir.file("fortunes"), 0, CorpusFormat::kPlainText});
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0], "First fortune,\ntwo lines.");
  EXPECT_EQ(docs[1], "Second: 50% off");
  EXPECT_EQ(docs[2], "Third");
}

TEST(Corpus, PlainFileIsOneDocument) {
  testing::TempDir dir;
  testing::write_text(dir.file("book.txt"), "\nChapter 1\n\nIt was a dark night.\n");
  auto docs = documents_of({dir.file("book.txt"), 0, CorpusFormat::kPlainText});
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0], "Chapter 1\n\nIt was a dark night.");
}

TEST(Corpus, JsonlTextField) {
  testing::TempDir dir;
  testing::write_text(dir.file("d.jsonl"), "{\"text\": \"héllo\\nworld\", \"id\": 1}\n\n{\"text\": \"नमस्ते\"}\n");
  auto listing = list_corpus_files({dir.file("d.jsonl")});
  ASSERT_TRUE(listing.ok());
  ASSERT_EQ(listing->files[0].format, CorpusFormat::kJsonl);
  auto docs = documents_of(listing->files[0]);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0], "héllo\nworld");
  EXPECT_EQ(docs[1], "नमस्ते");
}

TEST(Corpus, BadJsonlNamesFileAndLine) {
  testing::TempDir dir;
  testing::write_text(dir.file("d.jsonl"), "{\"text\": \"ok\"}\n{\"body\": \"no text field\"}\n");
  Status s;
  documents_of({dir.file("d.jsonl"), 0, CorpusFormat::kJsonl}, &s);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("d.jsonl:2"), std::string::npos) << s.message();
  testing::write_text(dir.file("e.jsonl"), "{\"text\": \"ok\"}\n{broken\n");
  documents_of({dir.file("e.jsonl"), 0, CorpusFormat::kJsonl}, &s);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("e.jsonl:2: not valid JSON"), std::string::npos) << s.message();
}

TEST(Corpus, InvalidUtf8NamesFileOffsetAndLine) {
  testing::TempDir dir;
  testing::write_text(dir.file("latin1.txt"), "line one\nl\xe9gume\n");
  Status s;
  documents_of({dir.file("latin1.txt"), 0, CorpusFormat::kPlainText}, &s);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("latin1.txt: invalid UTF-8 at byte offset 10 (line 2)"), std::string::npos)
      << s.message();
}

TEST(Corpus, NamedBinaryEmptyOrMissingFileIsAnError) {
  testing::TempDir dir;
  testing::write_text(dir.file("blob.bin"), std::string("\x7f" "ELF\0\0\0", 7));
  testing::write_text(dir.file("empty.txt"), "");
  auto binary = list_corpus_files({dir.file("blob.bin")});
  ASSERT_FALSE(binary.ok());
  EXPECT_NE(binary.status().message().find("blob.bin: binary file"), std::string::npos);
  auto empty = list_corpus_files({dir.file("empty.txt")});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty.txt: input file is empty"), std::string::npos);
  auto missing = list_corpus_files({dir.file("nope.txt")});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.txt: input does not exist"), std::string::npos);
  EXPECT_FALSE(list_corpus_files({}).ok());
}

TEST(Corpus, DirectoriesAreWalkedSortedSkippingBinaryAndDuplicates) {
  testing::TempDir dir;
  testing::write_text(dir.file("corpus/b.txt"), "bee");
  testing::write_text(dir.file("corpus/sub/a.txt"), "ay");
  testing::write_text(dir.file("corpus/a.txt"), "first");
  testing::write_text(dir.file("corpus/a.txt.dat"), std::string("\0\0\0\2", 4));
  testing::write_text(dir.file("corpus/.hidden"), "secret");
  std::filesystem::create_symlink(dir.file("corpus/b.txt"), dir.file("corpus/link.txt"));
  auto listing = list_corpus_files({dir.file("corpus"), dir.file("corpus/a.txt")});
  ASSERT_TRUE(listing.ok()) << listing.status().message();
  std::vector<std::string> names;
  for (const auto& f : listing->files) names.push_back(std::filesystem::path(f.path).filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"a.txt", "b.txt", "a.txt"}));  // link.txt is b.txt; sub/a.txt last
  EXPECT_EQ(listing->files[2].path, dir.file("corpus/sub/a.txt"));
  ASSERT_EQ(listing->skipped.size(), 1u);
  EXPECT_NE(listing->skipped[0].path.find("a.txt.dat"), std::string::npos);
  EXPECT_NE(listing->skipped[0].reason.find("binary"), std::string::npos);
}

// Issue 15, item 3: a link loop aborted with an uncaught filesystem_error.
TEST(Corpus, LinkLoopsAndOddEntriesAreSkippedOrNamed) {
  testing::TempDir dir;
  namespace fs = std::filesystem;
  testing::write_text(dir.file("corpus/a.txt"), "text");
  testing::write_text(dir.file("corpus/sub/b.txt"), "more");
  fs::create_symlink("loop", dir.file("corpus/loop"));               // resolves to itself
  fs::create_directory_symlink("..", dir.file("corpus/sub/up"));     // back to corpus/
  fs::create_symlink("nowhere", dir.file("corpus/dangling"));
  ASSERT_EQ(::mkfifo(dir.file("corpus/fifo").c_str(), 0644), 0);   // reading it would block
  auto listing = list_corpus_files({dir.file("corpus")});
  ASSERT_TRUE(listing.ok()) << listing.status().message();
  ASSERT_EQ(listing->files.size(), 2u);
  EXPECT_EQ(listing->files[0].path, dir.file("corpus/a.txt"));
  EXPECT_EQ(listing->files[1].path, dir.file("corpus/sub/b.txt"));
  std::map<std::string, std::string> skipped;
  for (const auto& s : listing->skipped) skipped[fs::path(s.path).filename().string()] = s.reason;
  ASSERT_EQ(skipped.size(), 4u);
  EXPECT_NE(skipped["loop"].find("symbolic links"), std::string::npos) << skipped["loop"];
  EXPECT_EQ(skipped["up"], "link to a directory already walked");
  EXPECT_EQ(skipped["dangling"], "dangling symbolic link");
  EXPECT_EQ(skipped["fifo"], "not a regular file");

  auto named = list_corpus_files({dir.file("corpus/loop")});
  ASSERT_FALSE(named.ok());
  EXPECT_NE(named.status().message().find("corpus/loop: cannot resolve: Too many levels of symbolic links"),
            std::string::npos)
      << named.status().message();
  named = list_corpus_files({dir.file("corpus/fifo")});
  ASSERT_FALSE(named.ok());
  EXPECT_NE(named.status().message().find("corpus/fifo"), std::string::npos) << named.status().message();
}

TEST(Corpus, JsonlRecordsAreBoundedAndTyped) {
  testing::TempDir dir;
  testing::write_text(dir.file("deep.jsonl"), std::string(100000, '[') + std::string(100000, ']') + "\n");
  Status s;
  documents_of({dir.file("deep.jsonl"), 0, CorpusFormat::kJsonl}, &s);
  EXPECT_NE(s.message().find("deep.jsonl:1: JSON nested more than"), std::string::npos) << s.message();
  testing::write_text(dir.file("typed.jsonl"), "{\"text\": \"ok\"}\n{\"text\": 5}\n");
  documents_of({dir.file("typed.jsonl"), 0, CorpusFormat::kJsonl}, &s);
  EXPECT_NE(s.message().find("typed.jsonl:2: 'text' must be"), std::string::npos) << s.message();
  // A long document is not cut.
  const std::string long_text(100000, 'x');
  testing::write_text(dir.file("long.jsonl"), "{\"text\": \"" + long_text + "\"}\n");
  auto docs = documents_of({dir.file("long.jsonl"), 0, CorpusFormat::kJsonl});
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0], long_text);
}

}  // namespace
}  // namespace sc
