#include "train/router_health.h"

#include <algorithm>
#include <fmt/format.h>
#include <numeric>

namespace sc {

std::vector<std::string> RouterHealth::update(const std::vector<std::vector<int64_t>>& counts) {
  std::vector<std::string> warnings;
  for (size_t l = 0; l < idle_.size() && l < counts.size(); ++l) {
    for (size_t e = 0; e < idle_[l].size() && e < counts[l].size(); ++e) {
      int64_t& idle = idle_[l][e];
      idle = counts[l][e] == 0 ? idle + 1 : 0;
      if (idle == patience_) {
        warnings.push_back(fmt::format("router collapse? expert {} of MoE layer {} has had no tokens for {} steps", e, l, idle));
      }
    }
  }
  return warnings;
}

double RouterHealth::balance(const std::vector<std::vector<int64_t>>& counts) {
  double worst = 0;
  for (const auto& layer : counts) {
    if (layer.empty()) continue;
    const double total = static_cast<double>(std::accumulate(layer.begin(), layer.end(), int64_t{0}));
    if (total == 0) continue;
    const double mean = total / static_cast<double>(layer.size());
    worst = std::max(worst, static_cast<double>(*std::max_element(layer.begin(), layer.end())) / mean);
  }
  return worst;
}

}  // namespace sc
