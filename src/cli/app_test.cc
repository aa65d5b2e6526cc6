#include "cli/app.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace sc::cli {
namespace {

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::string word;
  for (char c : line + ' ') {
    if (c != ' ') {
      word += c;
    } else if (!word.empty()) {
      out.push_back(word);
      word.clear();
    }
  }
  return out;
}

void expect_refused(const std::string& line, const std::string& expected) {
  const Status status = parse_and_check(words(line));
  ASSERT_FALSE(status.ok()) << line;
  EXPECT_NE(status.message().find(expected), std::string::npos) << line << ": " << status.message();
}

// The flag fuzzer relies on parse_and_check() running nothing: these name
// files that do not exist, which a run would have to read.
TEST(ParseAndCheck, AcceptsTheReadmeCommandsWithoutRunningThem) {
  for (const char* line : {
           "prepare --input /nonexistent/text.txt --out /nonexistent/data --vocab-size 4096",
           "train --config grok-mini --data /nonexistent/data --out /nonexistent/run --steps 10 --lr 3e-4",
           "train --resume --out /nonexistent/run",
           "generate --checkpoint /nonexistent/run --prompt hello --temperature 0.8 --top-k 40",
           "serve --checkpoint /nonexistent/run --port 0 --slots 2 --api-key k --max-queue 8",
           "plan --model grok-1 --cluster /nonexistent/cluster.json --gpus 1024 --tp 8",
           "launch -np 2 -- train --config grok-mini --data d --out o",
           "train --help",
           "--help",
       }) {
    const Status status = parse_and_check(words(line));
    EXPECT_TRUE(status.ok()) << line << ": " << status.message();
  }
}

TEST(ParseAndCheck, RefusesBadFlagsNamingThem) {
  expect_refused("train --no-such-flag 3", "--no-such-flag");
  expect_refused("train --lr inf --data d --out o", "--lr");
  expect_refused("train --threads 5000", "--threads");
  expect_refused("generate --checkpoint c --prompt p --top-k -5", "--top-k");
  expect_refused("generate --checkpoint c --prompt p --temperature nan", "--temperature");
  expect_refused("prepare --input a --out b --val-fraction 1", "--val-fraction");
  expect_refused("plan --gpus 1000000000000", "--gpus");
  expect_refused("launch -np 0 -- train", "-np");
  // The train command a launch would start, checked before mpirun starts it.
  expect_refused("launch -np 2 -- train --out o --steps ten", "launch: Could not convert: --steps = ten");
  expect_refused("nosuchcommand", "A subcommand is required");
  expect_refused("serve", "--checkpoint is required");
  expect_refused("serve --checkpoint c --slots 0", "--slots");
  expect_refused("serve --checkpoint c --port 65536", "--port");
  expect_refused("serve --checkpoint c --max-queue 5000", "--max-queue");
  expect_refused("serve --checkpoint c --ctx -1", "--ctx");
  expect_refused("", "");
}

// A bad command line is exit 1 like every other bad input (CLI11's own
// codes, 105 and 109, said nothing a script could use).
TEST(RunMain, ABadCommandLineExitsOne) {
  for (const char* args : {"train --no-such-flag 3", "plan --gpus", "nosuchcommand", ""}) {
    const testing::CommandResult r = testing::run_supercluster(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
  }
  EXPECT_EQ(testing::run_supercluster("train --help").exit_code, 0);
}

}  // namespace
}  // namespace sc::cli
