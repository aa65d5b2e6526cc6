#include "core/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>

namespace sc {
namespace {
void pin_current_thread(size_t core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(core % CPU_SETSIZE), &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

// Split of [0, count) into `parts` nearly equal contiguous ranges.
inline void part_range(size_t count, size_t parts, size_t part, size_t* begin, size_t* end) {
  size_t base = count / parts, extra = count % parts;
  *begin = part * base + std::min(part, extra);
  *end = *begin + base + (part < extra ? 1 : 0);
}
}  // namespace

size_t default_thread_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

Result<size_t> threads_from_flag(int64_t requested, std::string_view flag) {
  if (requested < 0 || requested > kMaxThreads) {
    return Status::invalid("{} must be an integer in [0, {}] (0: all {} cores) (got {})", flag, kMaxThreads,
                           default_thread_count(), requested);
  }
  return requested == 0 ? default_thread_count() : static_cast<size_t>(requested);
}

ThreadPool::ThreadPool(size_t num_threads, bool pin_to_cores) {
  num_threads = std::max<size_t>(1, num_threads);
  if (pin_to_cores) pin_current_thread(0);
  for (size_t i = 1; i < num_threads; ++i) {
    workers_.emplace_back([this, i, pin_to_cores] {
      if (pin_to_cores) pin_current_thread(i);
      worker_loop(i);
    });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(size_t count, const RangeFn& fn) {
  if (count == 0) return;
  size_t parts = std::min(count, num_threads());
  if (parts == 1) {
    fn(0, count, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // A worker that picked up an earlier job (late, after it was done) lets
    // go of it before the claims are reset for this one; it registered under
    // this lock, so none can pick up the earlier job from here on.
    while (in_job_.load(std::memory_order_acquire) != 0) cpu_relax();
    job_ = &fn;
    job_count_ = count;
    job_parts_ = parts;
    next_part_.store(0, std::memory_order_relaxed);
    parts_done_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  // The parts go to whoever asks first: on a shared machine a worker that
  // is not scheduled yet does not hold up the loop, the caller takes its part.
  run_parts(&fn, count, parts, 0);
  while (parts_done_.load(std::memory_order_acquire) != parts) cpu_relax();
}

void ThreadPool::run_parts(const RangeFn* fn, size_t count, size_t parts, size_t thread_index) {
  // `fn` is used only for a part claimed here: a late worker may hold the
  // pointer of a job whose caller has returned, and then claims nothing.
  for (size_t part = next_part_.fetch_add(1, std::memory_order_acq_rel); part < parts;
       part = next_part_.fetch_add(1, std::memory_order_acq_rel)) {
    size_t begin, end;
    part_range(count, parts, part, &begin, &end);
    (*fn)(begin, end, thread_index);
    parts_done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker_loop(size_t thread_index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin a little: the next loop of a training step usually comes at once.
    for (int spin = 0; spin < 20000 && generation_.load(std::memory_order_acquire) == seen; ++spin) {
      cpu_relax();
    }
    const RangeFn* job;
    size_t count, parts;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      if (stopping_) return;
      seen = generation_.load();
      job = job_;
      count = job_count_;
      parts = job_parts_;
      // Registered under the lock: the caller cannot reset the claims of a
      // newer job until this worker is done with this one.
      in_job_.fetch_add(1, std::memory_order_acq_rel);
    }
    run_parts(job, count, parts, thread_index);
    in_job_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace sc
