// The one thread pool of the process. Two cores are oversubscribed by any
// second pool (OpenMP, OpenBLAS threads, ad-hoc std::threads), so every
// parallel loop in supercluster runs here, and BLAS is called single-threaded
// from inside it. Workers spin briefly for the next job (a step issues many
// short loops back to back), then sleep, so an idle pool costs nothing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sc {

class ThreadPool {
 public:
  // fn(begin, end, thread_index) over a contiguous part of [0, count).
  using RangeFn = std::function<void(size_t begin, size_t end, size_t thread_index)>;

  // `num_threads` counts the calling thread, which takes part in every loop.
  explicit ThreadPool(size_t num_threads, bool pin_to_cores = false);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t num_threads() const { return workers_.size() + 1; }

  // Splits [0, count) into num_threads() contiguous parts (fewer if count is
  // small) and runs them in parallel; returns when all are done. The split
  // depends only on count and num_threads(), so results are deterministic;
  // which thread runs a part does not (a thread may run several, one after
  // another; thread_index names the thread, for per-thread scratch).
  void parallel_for(size_t count, const RangeFn& fn);

 private:
  void worker_loop(size_t thread_index);
  // Claims parts of the current job until none is left.
  void run_parts(const RangeFn* fn, size_t count, size_t parts, size_t thread_index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  const RangeFn* job_ = nullptr;
  size_t job_count_ = 0;
  size_t job_parts_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<size_t> next_part_{0};   // next unclaimed part of the current job
  std::atomic<size_t> parts_done_{0};
  std::atomic<size_t> in_job_{0};      // workers that picked up the current job
  bool stopping_ = false;
};

// Threads to use when the user gave none: the cores this process may run on.
size_t default_thread_count();

// The most threads a --threads flag may ask for (README): more than the cores
// of any machine this runs on, few enough that starting them cannot exhaust
// the process's threads.
inline constexpr int64_t kMaxThreads = 256;

// What `--threads N` means: N threads, or default_thread_count() for 0; an
// error naming `flag` and the range [0, kMaxThreads] otherwise.
Result<size_t> threads_from_flag(int64_t requested, std::string_view flag);

}  // namespace sc
