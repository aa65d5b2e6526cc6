#include "plan/sweep.h"

#include <charconv>

#include <fmt/format.h>

#include "plan/input_ranges.h"

namespace sc::plan {

Result<std::vector<int64_t>> parse_sweep_spec(const std::string& spec) {
  const std::string prefix = "gpus=";
  if (spec.rfind(prefix, 0) != 0)
    return Status::invalid("--sweep must be gpus=N1,N2,... (got {})", quote_input(spec));
  std::vector<int64_t> counts;
  size_t start = prefix.size();
  while (start <= spec.size()) {
    if (counts.size() == kMaxSweepSizes)
      return Status::invalid("--sweep: at most {} cluster sizes (in {})", kMaxSweepSizes, quote_input(spec));
    const size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string_view item = std::string_view(spec).substr(start, comma - start);
    int64_t value = 0;
    const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || error != std::errc() || end != item.data() + item.size() || value < kGpusRange.min ||
        value > kGpusRange.max) {
      return Status::invalid("--sweep: {} is not a GPU count in [{}, {}] (in {})", quote_input(item), kGpusRange.min,
                             kGpusRange.max, quote_input(spec));
    }
    counts.push_back(value);
    start = comma + 1;
  }
  return counts;
}

std::vector<SweepPoint> run_sweep(const PlanModel& model, const ClusterSpec& cluster, const RunSpec& run,
                                  const SearchSpace& space, const std::vector<int64_t>& gpu_counts) {
  std::vector<SweepPoint> points;
  for (int64_t gpus : gpu_counts) {
    ClusterSpec sized = cluster;
    sized.num_gpus = gpus;
    SearchResult result = search_layouts(model, sized, run, space);
    SweepPoint point;
    point.gpus = gpus;
    if (!result.fitting.empty()) {
      point.best = std::move(result.fitting.front());
    } else if (result.smallest_unfit) {
      point.why_none = fmt::format("nothing fits: smallest {:.1f} GB per GPU of {:.1f} GB",
                                   result.smallest_unfit->memory.total_bytes / 1e9,
                                   result.smallest_unfit->memory.capacity_bytes / 1e9);
    } else {
      point.why_none = "no valid layout";
      for (const auto& [reason, count] : result.rejected) point.why_none += fmt::format("; {} x {}", count, reason);
    }
    points.push_back(std::move(point));
  }
  return points;
}

}  // namespace sc::plan
