#include "launch/failure_cause.h"

#include <gtest/gtest.h>

#include <sstream>

namespace sc {
namespace {

FailureCause parse(const std::string& output) {
  FailureLineParser parser;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) parser.add_line(line);
  return parser.cause();
}

// Open MPI 4.1's words when rank 1 is killed with SIGKILL.
TEST(FailureCause, MpirunSignalReportNamesRankSignalAndNode) {
  FailureCause c = parse(
      "step 3/10 | loss 5.1\n"
      "--------------------------------------------------------------------------\n"
      "Primary job  terminated normally, but 1 process returned\n"
      "a non-zero exit code. Per user-direction, the job has been aborted.\n"
      "--------------------------------------------------------------------------\n"
      "--------------------------------------------------------------------------\n"
      "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).\n"
      "--------------------------------------------------------------------------\n");
  EXPECT_EQ(c.rank, 1);
  EXPECT_EQ(c.signal, 9);
  EXPECT_EQ(c.message, "rank 1 exited on signal 9 (Killed) on node vm");
  EXPECT_TRUE(c.recognized);
}

// A rank's own error (abort_job) and mpirun's exit report.
TEST(FailureCause, TrainerErrorLineWinsOverMpirunChatter) {
  FailureCause c = parse(
      "error: rank 1 of 2: step 4: non-finite loss (nan)\n"
      "--------------------------------------------------------------------------\n"
      "MPI_ABORT was invoked on rank 1 in communicator MPI_COMM_WORLD\n"
      "with errorcode 1.\n"
      "error: rank 0 of 2: all_reduce of 1024 floats timed out after 1000 ms\n");
  EXPECT_EQ(c.rank, 1);
  EXPECT_FALSE(c.signal.has_value());
  EXPECT_EQ(c.message, "rank 1 of 2: step 4: non-finite loss (nan)");
}

TEST(FailureCause, SignalReportOutranksALaterOrEarlierError) {
  FailureCause c = parse(
      "error: rank 0 of 2: barrier timed out after 1000 ms\n"
      "mpirun noticed that process rank 1 with PID 4242 on node gpu-17 exited on signal 6 (Aborted).\n");
  EXPECT_EQ(c.rank, 1);
  EXPECT_EQ(c.signal, 6);
  // Without the name in parentheses, the launcher names the signal itself.
  EXPECT_EQ(parse("mpirun noticed that process rank 3 with PID 7 on node n exited on signal 15.\n").message,
            "rank 3 exited on signal 15 (Terminated) on node n");
}

// A bad flag: CLI11's words (no "error:" prefix) on every rank, then
// mpirun's exit report.
TEST(FailureCause, NonZeroExitReportGivesRankCodeAndTheJobsLastOutput) {
  FailureCause c = parse(
      "Could not convert: --steps = ten\n"
      "Run with --help for more information.\n"
      "Could not convert: --steps = ten\n"
      "Run with --help for more information.\n"
      "--------------------------------------------------------------------------\n"
      "Primary job  terminated normally, but 1 process returned\n"
      "a non-zero exit code. Per user-direction, the job has been aborted.\n"
      "--------------------------------------------------------------------------\n"
      "--------------------------------------------------------------------------\n"
      "mpirun detected that one or more processes exited with non-zero status, thus causing\n"
      "the job to be terminated. The first process to do so was:\n"
      "\n"
      "  Process name: [[11483,1],1]\n"
      "  Exit code:    104\n"
      "--------------------------------------------------------------------------\n");
  EXPECT_EQ(c.rank, 1);
  EXPECT_EQ(c.exit_code, 104);
  EXPECT_EQ(c.message,
            "rank 1 exited with code 104; last output: Could not convert: --steps = ten | Run with --help for more "
            "information.");
}

TEST(FailureCause, PlainErrorOfASingleProcess) {
  FailureCause c = parse("[    0.01s info] starting\nerror: --resume: no valid checkpoint in runs/x/checkpoints\n");
  EXPECT_FALSE(c.rank.has_value());
  EXPECT_EQ(c.message, "--resume: no valid checkpoint in runs/x/checkpoints");
}

TEST(FailureCause, OtherwiseTheJobsLastLines) {
  FailureCause c = parse("one\ntwo\nthree\ntwo\nfour\n-----------\nmpirun says\n-----------\n\n");
  EXPECT_EQ(c.message, "two | three | four");
  EXPECT_FALSE(c.recognized);
  FailureLineParser parser;
  for (int i = 0; i < 100; ++i) parser.add_line("line " + std::to_string(i));
  EXPECT_EQ(parser.job_lines().size(), 20u);
  EXPECT_EQ(parser.job_lines().back(), "line 99");
}

TEST(FailureCause, NumbersPastIntInAJobsLinesAreNotACrash) {
  // std::stoi threw out_of_range here and took the launcher down.
  FailureCause c = parse(
      "error: rank 99999999999999999999 of 2: all_reduce timed out\n"
      "MPI_ABORT was invoked on rank 88888888888888888888 in communicator MPI_COMM_WORLD\n"
      "  Process name: [[11483,1],77777777777777777777]\n"
      "  Exit code:    66666666666666666666\n");
  EXPECT_NE(c.message.find("all_reduce timed out"), std::string::npos) << c.message;
}

}  // namespace
}  // namespace sc
