// `supercluster prepare` as a user runs it: the real binary, real files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "data/loader.h"
#include "data/tokenizer.h"
#include "core/thread_pool.h"
#include "test_util.h"

namespace sc {
namespace {

namespace fs = std::filesystem;

class PrepareCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string fortunes;
    std::string text = testing::multilingual_text(12);
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find('\n', pos);
      fortunes += text.substr(pos, end - pos) + "\n%\n";
      pos = end + 1;
    }
    testing::write_text(dir_.file("corpus/fortunes"), fortunes);
    testing::write_text(dir_.file("corpus/fortunes.dat"), std::string("\0\0\0\2\0\0", 6));
    testing::write_text(dir_.file("extra.jsonl"), "{\"text\": \"Ein Dokument aus JSONL. नमस्ते!\"}\n");
  }
  std::string inputs() const { return dir_.file("corpus") + " " + dir_.file("extra.jsonl"); }
  testing::TempDir dir_;
};

// One line, starting "error:", naming what was wrong; non-zero exit.
void expect_error(const testing::CommandResult& r, const std::string& expected) {
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(expected), std::string::npos) << "expected '" << expected << "' in:\n" << r.output;
}

TEST_F(PrepareCli, WritesTokenizerShardsAndReport) {
  const std::string out = dir_.file("out");
  auto r = testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400 --val-fraction 0.1 --seed 3",
                                                 inputs(), out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("prepared " + out), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tokens/s"), std::string::npos) << r.output;
  for (const char* f : {"tokenizer.model", "prepare.json", "train_0000.bin", "val_0000.bin"}) {
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
  }
  for (const auto& e : fs::directory_iterator(out)) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".")) << "temporary file left: " << e.path();
  }
  auto report = nlohmann::json::parse(testing::read_text(out + "/prepare.json"));
  EXPECT_EQ(report["vocab_size"], 400);
  EXPECT_EQ(report["inputs"].size(), 2u);
  EXPECT_EQ(report["skipped_files"].size(), 1u);
  const uint64_t docs = report["documents"]["train"].get<uint64_t>() + report["documents"]["val"].get<uint64_t>();
  EXPECT_EQ(docs, 8u * 12 + 1);
  EXPECT_GT(report["documents"]["val"].get<uint64_t>(), 0u);

  // The shards decode back to the corpus, document by document.
  auto tokenizer = Tokenizer::load(out + "/tokenizer.model");
  ASSERT_TRUE(tokenizer.ok());
  auto shard = ShardReader::open(out + "/train_0000.bin", 400u);
  ASSERT_TRUE(shard.ok()) << shard.status().message();
  EXPECT_EQ(shard->header().token_count, report["tokens"]["train"].get<uint64_t>());
  std::vector<uint32_t> first_doc;
  for (uint32_t t : shard->tokens()) {
    if (t == tokenizer->end_of_document_id()) break;
    first_doc.push_back(t);
  }
  auto text = tokenizer->decode(first_doc);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "The quick brown fox jumps over the lazy dog 12345 times.");

  // Same inputs and seed: byte-identical shards.
  const std::string again = dir_.file("again");
  r = testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400 --val-fraction 0.1 --seed 3",
                                            inputs(), again));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testing::read_text(out + "/train_0000.bin"), testing::read_text(again + "/train_0000.bin"));
  EXPECT_EQ(testing::read_text(out + "/val_0000.bin"), testing::read_text(again + "/val_0000.bin"));
}

TEST_F(PrepareCli, SmallShardLimitGivesManyShardsThatLoadAsOneStream) {
  const std::string out = dir_.file("out");
  auto r = testing::run_supercluster(
      fmt::format("prepare --input {} --out {} --vocab-size 400 --shard-tokens 500", inputs(), out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(fs::exists(out + "/train_0001.bin"));
  auto report = nlohmann::json::parse(testing::read_text(out + "/prepare.json"));
  auto loader = DataLoader::open(out, "train", {.batch_size = 2, .seq_len = 32, .expected_vocab_size = 400});
  ASSERT_TRUE(loader.ok()) << loader.status().message();
  EXPECT_EQ(loader->total_tokens(), report["tokens"]["train"].get<uint64_t>());
  // A later prepare with fewer shards removes the stale ones.
  r = testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400", inputs(), out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(out + "/train_0001.bin"));
}

TEST_F(PrepareCli, BadInputsAreClearErrors) {
  const std::string out = dir_.file("out");
  expect_error(testing::run_supercluster("prepare --input " + dir_.file("missing.txt") + " --out " + out),
               "missing.txt: input does not exist");
  testing::write_text(dir_.file("empty.txt"), "");
  expect_error(testing::run_supercluster("prepare --input " + dir_.file("empty.txt") + " --out " + out),
               "empty.txt: input file is empty");
  expect_error(testing::run_supercluster("prepare --input " + dir_.file("corpus/fortunes.dat") + " --out " + out),
               "fortunes.dat: binary file");
  testing::write_text(dir_.file("latin1.txt"), "caf\xe9\n");
  expect_error(testing::run_supercluster("prepare --input " + dir_.file("latin1.txt") + " --out " + out),
               "latin1.txt: invalid UTF-8 at byte offset 3");
  expect_error(testing::run_supercluster("prepare --input " + inputs() + " --out " + out + " --vocab-size 100000"),
               "vocab size 100000 is larger than this corpus supports");
  testing::write_text(dir_.file("a_file"), "x");
  expect_error(testing::run_supercluster("prepare --input " + inputs() + " --out " + dir_.file("a_file/out")),
               "a_file/out");
  expect_error(testing::run_supercluster("prepare --input " + inputs() + " --out " + out + " --val-fraction 1.5"),
               "--val-fraction 1.5");
  EXPECT_FALSE(fs::exists(out + "/train_0000.bin"));
}

TEST_F(PrepareCli, FailedRunKeepsEarlierGoodOutput) {
  const std::string out = dir_.file("out");
  ASSERT_EQ(testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400", inputs(), out)).exit_code, 0);
  const std::string tokenizer_before = testing::read_text(out + "/tokenizer.model");
  const std::string shard_before = testing::read_text(out + "/train_0000.bin");
  testing::write_text(dir_.file("corpus/zz_bad.txt"), "ok\n\xff\n");
  expect_error(testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400", inputs(), out)),
               "zz_bad.txt: invalid UTF-8");
  EXPECT_EQ(testing::read_text(out + "/tokenizer.model"), tokenizer_before);
  EXPECT_EQ(testing::read_text(out + "/train_0000.bin"), shard_before);
}

// Every entry of `dir` whose name starts with '.': a prepare's temporary.
std::vector<std::string> hidden_entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().starts_with(".")) names.push_back(e.path().filename().string());
  }
  return names;
}

std::map<std::string, std::string> files_of(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files[e.path().filename().string()] = testing::read_text(e.path());
  return files;
}

// Issue 15, item 7: a prepare that fails late (after the tokenizer and the
// shards are written) leaves the earlier output exactly as it was.
TEST_F(PrepareCli, FailedRunIntoExistingOutputLosesNothing) {
  const std::string out = dir_.file("out");
  ASSERT_EQ(testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400", inputs(), out)).exit_code, 0);
  const auto before = files_of(out);
  ASSERT_TRUE(before.count("train_0000.bin") && before.count("tokenizer.model") && before.count("prepare.json"));
  expect_error(testing::run_supercluster(
                   fmt::format("prepare --input {} --out {} --vocab-size 500 --val-fraction 0.999999", inputs(), out)),
               "every document went to validation");
  EXPECT_TRUE(files_of(out) == before) << "the failed prepare changed " << out;
  EXPECT_TRUE(hidden_entries(dir_.path()).empty()) << hidden_entries(dir_.path()).front();
  EXPECT_TRUE(hidden_entries(out).empty());
}

// The output directory is replaced as a whole, so prepare refuses one that
// holds files it did not write rather than deleting them.
TEST_F(PrepareCli, OutputHoldingOtherFilesIsRefused) {
  const std::string out = dir_.file("corpus");  // holds the input itself
  const auto before = files_of(out);
  expect_error(testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400", inputs(), out)),
               "fortunes");
  EXPECT_TRUE(files_of(out) == before);
  EXPECT_TRUE(hidden_entries(dir_.path()).empty());
}

// Issues 15, items 7 and 8: `kill -9` of a prepare into an existing output,
// once the new tokenizer is written, leaves the previous output whole (its
// tokenizer with its shards); the next prepare removes the leftover.
TEST_F(PrepareCli, KilledRunLeavesPreviousOutputWhole) {
  std::string corpus;
  const std::string text = testing::multilingual_text(3000);
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    corpus += text.substr(pos, end - pos) + "\n%\n";
    pos = end + 1;
  }
  testing::write_text(dir_.file("big/fortunes"), corpus);
  const std::string out = dir_.file("out");
  ASSERT_EQ(testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400", dir_.file("big"), out))
                .exit_code, 0);
  const auto before = files_of(out);

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    ::execl(SUPERCLUSTER_BINARY, SUPERCLUSTER_BINARY, "prepare", "--input", dir_.file("big").c_str(), "--out",
            out.c_str(), "--vocab-size", "500", "--shard-tokens", "2000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Kill it as soon as a new tokenizer exists anywhere beside or in `out`.
  auto new_tokenizer_written = [&] {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_.path(), ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->path().filename() == "tokenizer.model" && testing::read_text(it->path()) != before.at("tokenizer.model")) {
        return true;
      }
    }
    return false;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!new_tokenizer_written() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "prepare finished before it could be killed";

  const auto after = files_of(out);
  for (const auto& [name, bytes] : before) {
    EXPECT_TRUE(after.count(name) && after.at(name) == bytes) << name << " changed or vanished";
  }
  EXPECT_EQ(after.size(), before.size());

  // The next prepare succeeds and leaves nothing of the killed one behind.
  auto r = testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400", inputs(), out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(hidden_entries(dir_.path()).empty()) << hidden_entries(dir_.path()).front();
}

// Issue 15, item 3: symbolic-link loops never abort prepare. Met while
// walking a directory, a link that cannot be resolved is skipped and listed,
// a link back to a directory already walked is not walked again; named as an
// input, a loop is an error naming it.
TEST_F(PrepareCli, SymlinkLoopsAreSkippedOrNamed) {
  fs::create_symlink("loop", dir_.file("corpus/loop"));
  fs::create_directories(dir_.file("corpus/sub"));
  fs::create_directory_symlink("..", dir_.file("corpus/sub/up"));
  testing::write_text(dir_.file("corpus/sub/more.txt"), "More text in a subdirectory.\n");
  const std::string out = dir_.file("out");
  auto r = testing::run_supercluster(fmt::format("prepare --input {} --out {} --vocab-size 400", inputs(), out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto report = nlohmann::json::parse(testing::read_text(out + "/prepare.json"));
  EXPECT_EQ(report["inputs"].size(), 3u);  // fortunes, sub/more.txt, extra.jsonl: each once
  const std::string skipped = report["skipped_files"].dump();
  EXPECT_NE(skipped.find("corpus/loop"), std::string::npos) << skipped;
  EXPECT_NE(skipped.find("corpus/sub/up"), std::string::npos) << skipped;
  EXPECT_NE(r.output.find("skipped 3"), std::string::npos) << r.output;

  fs::create_symlink("self", dir_.file("self"));
  expect_error(testing::run_supercluster("prepare --input " + dir_.file("self") + " --out " + dir_.file("out2")),
               "self: cannot resolve");
}

// Issue 15, item 6 (prepare): --threads is 0 (all cores) to 256.
TEST_F(PrepareCli, ThreadsOutOfRangeIsAClearError) {
  const std::string out = dir_.file("out");
  for (const char* threads : {"100000000", "5000", "257"}) {
    expect_error(testing::run_supercluster(fmt::format("prepare --input {} --out {} --threads {}", inputs(), out, threads)),
                 fmt::format("--threads must be an integer in [0, 256] (0: all {} cores) (got {})",
                             default_thread_count(), threads));
  }
  auto r = testing::run_supercluster(fmt::format("prepare --input {} --out {} --threads -1", inputs(), out));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--threads must be an integer in [0, 256]"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace sc
