// One task at a time on a background thread, for the checkpoint writer: the
// step loop stages what the task needs, starts it, and goes on; it polls
// finished() between steps and collects the task's Status with wait().
#pragma once

#include <atomic>
#include <functional>
#include <thread>

#include "core/status.h"

namespace sc {

class BackgroundTask {
 public:
  BackgroundTask() = default;
  BackgroundTask(const BackgroundTask&) = delete;
  BackgroundTask& operator=(const BackgroundTask&) = delete;
  ~BackgroundTask() { (void)wait(); }

  // Runs `task` on a new thread, after waiting for the previous one (a
  // thread must never be assigned over a running one).
  void start(std::function<Status()> task) {
    (void)wait();
    finished_.store(false, std::memory_order_relaxed);
    running_ = true;
    thread_ = std::thread([this, task = std::move(task)] {
      status_ = task();
      finished_.store(true, std::memory_order_release);
    });
  }
  // True once the task has returned (wait() then does not block).
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  // Blocks until the task returns; its Status (ok when none was started).
  Status wait() {
    if (!running_) return Status();
    thread_.join();
    running_ = false;
    return status_;
  }

 private:
  std::thread thread_;
  std::atomic<bool> finished_{true};
  bool running_ = false;
  Status status_;
};

}  // namespace sc
