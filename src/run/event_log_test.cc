#include "run/event_log.h"

#include <gtest/gtest.h>

#include "core/wall_clock.h"
#include "test_util.h"

namespace sc {
namespace {

TEST(EventLog, AppendsOneObjectPerLineWithSourceAndTime) {
  testing::TempDir dir;
  const std::string path = dir.file("events.jsonl");
  const EventLog trainer(path, "trainer"), launcher(path, "launch");
  const double before = unix_seconds_now();
  trainer.append({{"event", "checkpoint"}, {"step", 10}});
  launcher.append({{"event", "failure"}, {"attempt", 1}});
  const std::vector<nlohmann::json> events = read_events(path);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["event"], "checkpoint");
  EXPECT_EQ(events[0]["source"], "trainer");
  EXPECT_EQ(events[0]["step"], 10);
  EXPECT_EQ(events[1]["source"], "launch");
  EXPECT_GE(events[1]["time"].get<double>(), before);
  EXPECT_LE(events[1]["time"].get<double>(), unix_seconds_now());
}

TEST(EventLog, ADisabledLogWritesNothingAndReadingSkipsGarbage) {
  testing::TempDir dir;
  EventLog().append({{"event", "checkpoint"}});  // rank > 0: no file, no crash
  const std::string path = dir.file("events.jsonl");
  testing::write_text(path, "{\"event\": \"a\"}\n[1, 2]\nnot json\n{\"event\": \"b\"}\n");
  const std::vector<nlohmann::json> events = read_events(path);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1]["event"], "b");
  EXPECT_TRUE(read_events(dir.file("missing")).empty());
}

}  // namespace
}  // namespace sc
