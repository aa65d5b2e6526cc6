#include "launch/job_process.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>

namespace sc {
namespace {

std::string read_all(JobProcess& job) {
  std::string out;
  char buf[256];
  while (job.output_fd() >= 0) {
    pollfd pfd{job.output_fd(), POLLIN, 0};
    ::poll(&pfd, 1, 1000);
    const ssize_t n = ::read(job.output_fd(), buf, sizeof(buf));
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    if (n == 0) job.close_output();
  }
  return out;
}

TEST(JobProcess, RunsInItsOwnGroupWithMergedOutputAndExtraEnvironment) {
  const std::string marker = "SUPERCLUSTER_TEST_MARKER=" + std::to_string(::getpid()) + "-a";
  auto job = JobProcess::start({"sh", "-c", "echo out $JOB_VAR; echo err >&2; echo $$ $(ps -o pgid= -p $$); exit 4"},
                               {"JOB_VAR=hello"}, marker);
  ASSERT_TRUE(job.ok()) << job.status().message();
  const std::string out = read_all(*job);
  while (!job->poll_exit()) ::usleep(1000);
  EXPECT_NE(out.find("out hello"), std::string::npos) << out;
  EXPECT_NE(out.find("err"), std::string::npos) << out;
  // Its pid is its process group.
  const std::string ids = out.substr(out.rfind("err") + 4);
  const pid_t pid = std::stoi(ids);
  EXPECT_EQ(pid, job->pid());
  EXPECT_EQ(std::stoi(ids.substr(ids.find(' '))), job->pid());
  ASSERT_TRUE(WIFEXITED(job->wait_status()));
  EXPECT_EQ(WEXITSTATUS(job->wait_status()), 4);
}

TEST(JobProcess, StopEndsTheTreeAndMarkedProcessesAreFound) {
  const std::string marker = "SUPERCLUSTER_TEST_MARKER=" + std::to_string(::getpid()) + "-b";
  auto job = JobProcess::start({"sh", "-c", "sleep 30 & echo started; wait"}, {}, marker);
  ASSERT_TRUE(job.ok()) << job.status().message();
  char buf[64];
  pollfd pfd{job->output_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1);
  ASSERT_GT(::read(job->output_fd(), buf, sizeof(buf)), 0);
  const std::vector<pid_t> marked = find_marked_processes(marker);
  EXPECT_EQ(marked.size(), 2u);  // sh and sleep
  EXPECT_NE(std::find(marked.begin(), marked.end(), job->pid()), marked.end());
  job->stop(1.0, [] {});
  EXPECT_TRUE(job->exited());
  EXPECT_TRUE(find_marked_processes(marker).empty());
}

TEST(JobProcess, UnknownProgramIsAnError) {
  auto job = JobProcess::start({"no-such-program-supercluster"}, {}, "SUPERCLUSTER_TEST_MARKER=x");
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("no-such-program-supercluster: not found in PATH"), std::string::npos)
      << job.status().message();
}

}  // namespace
}  // namespace sc
