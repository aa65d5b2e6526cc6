#include "serve/checkpoint_follower.h"

#include <filesystem>
#include <vector>

#include "core/log.h"
#include "run/checkpoint_store.h"

namespace sc {

CheckpointFollower::CheckpointFollower(std::string checkpoints_dir, int64_t served_step,
                                       std::chrono::milliseconds poll_interval, Ready ready, Offer offer)
    : checkpoints_dir_(std::move(checkpoints_dir)),
      poll_interval_(poll_interval),
      ready_(std::move(ready)),
      offer_(std::move(offer)),
      newest_offered_(served_step) {
  thread_ = std::thread([this] { run(); });
}

CheckpointFollower::~CheckpointFollower() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void CheckpointFollower::run() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, poll_interval_, [&] { return stopping_; })) {
    lock.unlock();
    if (ready_()) look();
    lock.lock();
  }
}

void CheckpointFollower::look() {
  for (const int64_t step : committed_checkpoint_steps(checkpoints_dir_)) {  // newest first
    if (step <= newest_offered_) return;
    if (rejected_.contains(step)) continue;
    const std::string dir = (std::filesystem::path(checkpoints_dir_) / checkpoint_dir_name(step)).string();
    auto model = LoadedModel::load(dir);
    const Status status = model.ok() ? offer_(std::move(model).value()) : model.status();
    if (status.ok()) {
      newest_offered_ = step;
      return;
    }
    // Once: the same files fail the same way, and a newer step will be looked at anyway.
    rejected_.insert(step);
    log_warn("--follow: not switching to {}: {}; still serving step {} (this checkpoint is not tried again)", dir,
             status.message(), newest_offered_);
  }
}

}  // namespace sc
