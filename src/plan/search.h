// --search: every layout of the cluster's GPUs for a model and run, priced by
// the cost model, fitting ones ranked by step time; the others counted by why
// they were rejected (divisibility or memory).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plan/cost_model.h"

namespace sc::plan {

// Fields left at 0 (recompute: unset) are searched; others are kept fixed.
struct SearchSpace {
  int64_t tp = 0, pp = 0, vp = 0, ep = 0, cp = 0, micro_batch = 0;
  int64_t zero = -1;
  std::optional<Recompute> recompute;
  bool balance_pipeline = false;  // kept as given
  SoftwareStack software;         // kept as given
};

struct SearchResult {
  std::vector<Plan> fitting;                       // fewest effective days (failures included) first
  std::map<std::string, int64_t> rejected;         // reason -> layouts
  std::optional<Plan> smallest_unfit;              // least memory among those that do not fit
  int64_t tried = 0;
};

// The flags a search keeps fixed, each checked on its own before any layout
// is tried (validate_layout's checks that need no other flag): a bad one is
// one line naming it, not every layout rejected for the same reason.
Status validate_search_space(const PlanModel& model, const ClusterSpec& cluster, const RunSpec& run,
                             const SearchSpace& space);

SearchResult search_layouts(const PlanModel& model, const ClusterSpec& cluster, const RunSpec& run,
                            const SearchSpace& space);

}  // namespace sc::plan
