#include "serve/stop_strings.h"

#include <gtest/gtest.h>

namespace sc {
namespace {

TEST(StopStrings, TextWithoutStopsPassesThrough) {
  StopStringMatcher m;
  EXPECT_EQ(m.add("Hello"), "Hello");
  EXPECT_EQ(m.add(" world"), " world");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, AStopSplitAcrossTokensIsHeldBackThenDropped) {
  StopStringMatcher m({"\nUser:"});
  EXPECT_EQ(m.add("Fine."), "Fine.");
  EXPECT_EQ(m.add("\nUs"), "");  // could be the stop string
  EXPECT_EQ(m.add("er: more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.add("anything"), "");
}

TEST(StopStrings, AFalseStartIsReleased) {
  StopStringMatcher m({"STOP"});
  EXPECT_EQ(m.add("ST"), "");
  EXPECT_EQ(m.add("ay"), "STay");
  EXPECT_EQ(m.add("xS"), "x");
  EXPECT_EQ(m.flush(), "S");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStrings, TheEarliestOfSeveralStopsWins) {
  StopStringMatcher m({"b", "", "cd"});
  EXPECT_EQ(m.add("acdb"), "a");
  EXPECT_TRUE(m.stopped());
}

TEST(StopStrings, HalfACharacterWaitsForTheRest) {
  StopStringMatcher m;
  const std::string u_umlaut = "\xC3\xBC";  // ü
  EXPECT_EQ(m.add("Gr" + u_umlaut.substr(0, 1)), "Gr");
  EXPECT_EQ(m.add(u_umlaut.substr(1) + "n"), u_umlaut + "n");
}

}  // namespace
}  // namespace sc
