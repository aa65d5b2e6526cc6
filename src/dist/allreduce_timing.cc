#include "dist/allreduce_timing.h"

#include <algorithm>
#include <chrono>

namespace sc {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

Result<std::vector<AllReduceTiming>> time_all_reduce(Communicator& comm, std::span<const size_t> sizes_bytes,
                                                     const AllReduceTimingOptions& options,
                                                     const std::function<void(const AllReduceTiming&)>& on_timing) {
  std::vector<AllReduceTiming> timings;
  for (size_t bytes : sizes_bytes) {
    std::vector<float> data(bytes / sizeof(float), 1.0f);
    SC_RETURN_IF_ERROR(comm.all_reduce(data, options.timeout));  // warm-up
    double best = 1e30;
    const auto start = Clock::now();
    for (int i = 0; i < options.max_repeats && (i < options.min_repeats || seconds_since(start) < options.budget_s);
         ++i) {
      SC_RETURN_IF_ERROR(comm.barrier(options.timeout));
      const auto t0 = Clock::now();
      SC_RETURN_IF_ERROR(comm.all_reduce(data, options.timeout));
      best = std::min(best, seconds_since(t0));
    }
    timings.push_back({bytes, best});
    if (on_timing) on_timing(timings.back());
  }
  SC_RETURN_IF_ERROR(comm.barrier(options.timeout));
  return timings;
}

}  // namespace sc
