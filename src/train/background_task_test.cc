#include "train/background_task.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace sc {
namespace {

TEST(BackgroundTask, StartingWhileATaskRunsWaitsForItInsteadOfTerminating) {
  BackgroundTask task;
  std::atomic<int> done{0};
  task.start([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ++done;
    return Status::io_error("first");
  });
  task.start([&] {  // the first is still running: std::thread would terminate
    ++done;
    return Status();
  });
  EXPECT_TRUE(task.wait().ok());
  EXPECT_EQ(done.load(), 2);
  EXPECT_TRUE(task.finished());
}

}  // namespace
}  // namespace sc
