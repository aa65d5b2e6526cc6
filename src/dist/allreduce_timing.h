// The rank side of an all-reduce bandwidth measurement: every rank of a
// communicator times all_reduce of each message size, the best of a few
// repeats (the machine may be shared: the best run is the closest to the
// collective itself). `plan --calibrate` runs it as 2 MPI ranks.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <vector>

#include "core/status.h"
#include "dist/communicator.h"

namespace sc {

struct AllReduceTiming {
  size_t bytes = 0;
  double best_s = 0;  // fastest of the repeats, barrier-aligned, on this rank
};

struct AllReduceTimingOptions {
  int min_repeats = 3;    // timed repeats at least...
  int max_repeats = 20;   // ...and at most,
  double budget_s = 0.2;  // stopping at min_repeats once this much time has passed
  CollectiveTimeout timeout{20000};
};

// Collective: every rank calls it with the same sizes (multiples of 4 bytes:
// the payload is fp32). `on_timing`, if given, sees each size's timing as
// soon as it is known, so a later failure keeps the earlier ones. Ends with
// a barrier, so no rank leaves while another is still in a collective.
Result<std::vector<AllReduceTiming>> time_all_reduce(
    Communicator& comm, std::span<const size_t> sizes_bytes, const AllReduceTimingOptions& options = {},
    const std::function<void(const AllReduceTiming&)>& on_timing = nullptr);

}  // namespace sc
