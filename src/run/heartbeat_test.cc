#include "run/heartbeat.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

TEST(Heartbeat, WriterIsOffWithoutTheVariable) {
  ::unsetenv("SUPERCLUSTER_HEARTBEAT_DIR");
  HeartbeatWriter writer = HeartbeatWriter::from_env(0);
  EXPECT_FALSE(writer.enabled());
  writer.beat(1, HeartbeatPhase::kTrain);  // a no-op, not a crash
}

TEST(Heartbeat, WriterReplacesItsFileAndTheReaderSeesTheLatestBeat) {
  testing::TempDir dir;
  const std::string beats = dir.file("heartbeat");  // created by the first beat
  ::setenv("SUPERCLUSTER_HEARTBEAT_DIR", beats.c_str(), 1);
  HeartbeatWriter rank1 = HeartbeatWriter::from_env(1);
  ::unsetenv("SUPERCLUSTER_HEARTBEAT_DIR");
  ASSERT_TRUE(rank1.enabled());
  HeartbeatWriter rank0(beats, 0);
  rank1.beat(0, HeartbeatPhase::kSetup);
  rank1.beat(7, HeartbeatPhase::kCheckpoint);
  rank0.beat(7, HeartbeatPhase::kDone);
  EXPECT_EQ(rank1.path(), beats + "/rank-1.json");

  const nlohmann::json file = nlohmann::json::parse(testing::read_text(beats + "/rank-1.json"));
  for (const char* key : {"rank", "pid", "host", "step", "phase", "time"}) EXPECT_TRUE(file.contains(key)) << key;

  const std::vector<Heartbeat> read = read_heartbeats(beats);
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[0].rank, 0);
  EXPECT_EQ(read[0].phase, "done");
  EXPECT_EQ(read[1].rank, 1);
  EXPECT_EQ(read[1].step, 7);
  EXPECT_EQ(read[1].phase, "checkpoint");
  EXPECT_EQ(read[1].pid, ::getpid());
  EXPECT_GT(read[1].time, 1.6e9);  // unix seconds
  // Only the two heartbeat files: the temporary was renamed away.
  EXPECT_EQ(std::distance(fs::directory_iterator(beats), fs::directory_iterator()), 2);
}

TEST(Heartbeat, ReaderSkipsPartialAndForeignFiles) {
  testing::TempDir dir;
  HeartbeatWriter(dir.path(), 2).beat(3, HeartbeatPhase::kTrain);
  testing::write_text(dir.file("rank-0.json"), "{\"rank\": 0, \"st");  // torn
  testing::write_text(dir.file("rank-1.json"), "{\"hello\": 1}");      // not a heartbeat
  testing::write_text(dir.file("notes.txt"), "{\"rank\": 5, \"step\": 9}");
  const std::vector<Heartbeat> read = read_heartbeats(dir.path());
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(read[0].rank, 2);
  EXPECT_TRUE(read_heartbeats(dir.file("missing")).empty());
}

TEST(Heartbeat, ClearRemovesBeatsAndTemporariesOnly) {
  testing::TempDir dir;
  HeartbeatWriter(dir.path(), 0).beat(1, HeartbeatPhase::kTrain);
  testing::write_text(dir.file(".rank-3.json.tmp"), "x");
  testing::write_text(dir.file("keep.txt"), "x");
  ASSERT_TRUE(clear_heartbeats(dir.path()).ok());
  EXPECT_TRUE(read_heartbeats(dir.path()).empty());
  EXPECT_FALSE(fs::exists(dir.file(".rank-3.json.tmp")));
  EXPECT_TRUE(fs::exists(dir.file("keep.txt")));
  ASSERT_TRUE(clear_heartbeats(dir.file("new/heartbeat")).ok());
  EXPECT_TRUE(fs::is_directory(dir.file("new/heartbeat")));
}

TEST(Heartbeat, UnwritableDirectoryDoesNotFailTheCaller) {
  testing::TempDir dir;
  testing::write_text(dir.file("file"), "x");
  HeartbeatWriter writer(dir.file("file") + "/heartbeat", 0);
  writer.beat(1, HeartbeatPhase::kTrain);  // logs once, returns
  writer.beat(2, HeartbeatPhase::kTrain);
  EXPECT_FALSE(fs::exists(writer.path()));
}

}  // namespace
}  // namespace sc
