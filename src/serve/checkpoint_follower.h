// `serve --follow` (docs/serving.md): a thread that watches a training run's
// checkpoints/ and loads each newly committed checkpoint, off the engine's
// scheduler thread (a big model takes seconds to load while serving goes
// on), for the server to switch to. A checkpoint that does not load, or
// that the server cannot use, is named in one warning and never tried again;
// the model served stays.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "core/status.h"
#include "serve/loaded_model.h"

namespace sc {

// How often --follow looks for a new checkpoint: a look lists one directory
// (nothing is read until a newer step appears), and training commits a
// checkpoint every many seconds at best.
inline constexpr std::chrono::milliseconds kFollowPollInterval{1000};

class CheckpointFollower {
 public:
  // Whether the server can take a checkpoint now; while it is false (a
  // switch to the last one is still pending, or the server is stopping)
  // the follower does not look.
  using Ready = std::function<bool()>;
  // Hands a loaded checkpoint to the server. An error says why it cannot
  // replace the model served: the checkpoint is then rejected.
  using Offer = std::function<Status(std::shared_ptr<const LoadedModel> model)>;

  // Starts watching `checkpoints_dir` for committed checkpoints newer than
  // `served_step`, one look every `poll_interval`.
  CheckpointFollower(std::string checkpoints_dir, int64_t served_step, std::chrono::milliseconds poll_interval,
                     Ready ready, Offer offer);
  ~CheckpointFollower();  // stops; waits for a load under way to end

 private:
  void run();
  // One look: offers the newest checkpoint newer than newest_offered_ that
  // loads and is accepted, rejecting each newer one that is not.
  void look();

  const std::string checkpoints_dir_;
  const std::chrono::milliseconds poll_interval_;
  const Ready ready_;
  const Offer offer_;
  // The follower thread's alone.
  int64_t newest_offered_;      // the step served, or being switched to
  std::set<int64_t> rejected_;  // newer steps that failed: not tried again

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sc
