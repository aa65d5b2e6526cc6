// --sweep gpus=1024,4096,16384,100000: the best layout the search finds for
// each cluster size, the same model, run and software; a scaling curve of
// throughput, MFU, power and failures per day.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "plan/search.h"

namespace sc::plan {

// "gpus=1024,4096,16384,100000" -> {1024, 4096, 16384, 100000}. Errors name
// the flag and the bad element.
Result<std::vector<int64_t>> parse_sweep_spec(const std::string& spec);

struct SweepPoint {
  int64_t gpus = 0;
  std::optional<Plan> best;   // fastest layout that fits
  std::string why_none;       // when none fits: the search's reasons
};

// The cluster is copied and its GPU count set to each size in turn.
std::vector<SweepPoint> run_sweep(const PlanModel& model, const ClusterSpec& cluster, const RunSpec& run,
                                  const SearchSpace& space, const std::vector<int64_t>& gpu_counts);

}  // namespace sc::plan
