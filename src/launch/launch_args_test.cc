#include "launch/launch_args.h"

#include <gtest/gtest.h>

namespace sc {
namespace {

TEST(LaunchArgs, ParsesEveryOptionAndTheTrainCommand) {
  auto r = parse_launch_args({"-np",
                              "4",
                              "--max-restarts",
                              "7",
                              "--hang-timeout=30",
                              "--backoff",
                              "0.5",
                              "--backoff-max",
                              "8",
                              "--kill-grace",
                              "2",
                              "--mpirun-arg",
                              "--oversubscribe",
                              "--mpirun-arg=--mca",
                              "--mpirun-arg",
                              "btl",
                              "--",
                              "train",
                              "--config",
                              "grok-mini",
                              "--out",
                              "runs/x",
                              "--steps",
                              "10"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->ranks, 4);
  EXPECT_EQ(r->max_restarts, 7);
  EXPECT_DOUBLE_EQ(r->hang_timeout_s, 30);
  EXPECT_DOUBLE_EQ(r->backoff_s, 0.5);
  EXPECT_DOUBLE_EQ(r->backoff_max_s, 8);
  EXPECT_DOUBLE_EQ(r->kill_grace_s, 2);
  EXPECT_EQ(r->mpirun_args, (std::vector<std::string>{"--oversubscribe", "--mca", "btl"}));
  EXPECT_EQ(r->run_dir, "runs/x");
  EXPECT_EQ(mpirun_command(*r, "/opt/sc/supercluster"),
            (std::vector<std::string>{"mpirun", "-np", "4", "--oversubscribe", "--mca", "btl", "/opt/sc/supercluster",
                                      "train", "--config", "grok-mini", "--out", "runs/x", "--steps", "10"}));
  SupervisorOptions options = supervisor_options(*r, {"mpirun"});
  EXPECT_EQ(options.ranks, 4);
  EXPECT_EQ(options.run_dir, "runs/x");
  EXPECT_EQ(options.max_restarts, 7);
  EXPECT_DOUBLE_EQ(options.hang_timeout_s, 30);
}

TEST(LaunchArgs, DefaultsAndOtherSpellings) {
  auto r = parse_launch_args({"--np=2", "--", "train", "--out=runs/y"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->ranks, 2);
  EXPECT_EQ(r->max_restarts, 3);
  EXPECT_DOUBLE_EQ(r->hang_timeout_s, 300);
  EXPECT_EQ(r->run_dir, "runs/y");
  EXPECT_EQ(find_out_dir({"train", "--out", "a", "--out", "b"}), "b");  // the last one wins, as in CLI11
  EXPECT_EQ(find_out_dir({"train", "--out"}), "");
}

TEST(LaunchArgs, ErrorsNameTheFlagAndWhatWasExpected) {
  struct Case {
    std::vector<std::string> args;
    const char* says;
  };
  const std::vector<Case> cases = {
      {{"--", "train", "--out", "x"}, "-np N (the number of ranks) is required"},
      {{"-np", "0", "--", "train", "--out", "x"}, "-np expects a positive integer, got '0'"},
      {{"-np", "2.5", "--", "train", "--out", "x"}, "got '2.5'"},
      {{"-np", "2", "--max-restarts", "-1", "--", "train", "--out", "x"}, "--max-restarts expects a non-negative"},
      {{"-np", "2", "--hang-timeout", "soon", "--", "train", "--out", "x"},
       "--hang-timeout expects a non-negative number of seconds, got 'soon'"},
      {{"-np", "2", "--backoff"}, "--backoff needs a value"},
      {{"-np", "2", "--retries", "3", "--", "train", "--out", "x"}, "unknown option '--retries'"},
      {{"-np", "2", "train", "--out", "x"}, "unknown option 'train'"},
      {{"-np", "2"}, "expected '-- train ARGS...'"},
      {{"-np", "2", "--", "generate", "--out", "x"}, "expected '-- train ARGS...'"},
      {{"-np", "2", "--", "train", "--steps", "3"}, "need --out RUN"},
  };
  for (const Case& c : cases) {
    auto r = parse_launch_args(c.args);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << "one line: " << r.status().message();
  }
}

}  // namespace
}  // namespace sc
