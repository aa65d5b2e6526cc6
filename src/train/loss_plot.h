// The loss curve as a self-contained SVG: what a person opens instead of
// reading metrics.jsonl.
#pragma once

#include <string>
#include <vector>

namespace sc {

struct LossPoint {
  double step;
  double loss;
};

// Train loss (raw, faint, plus an exponential moving average) and val loss
// (markers) against step, with axes and labels.
std::string render_loss_svg(const std::vector<LossPoint>& train, const std::vector<LossPoint>& val,
                            const std::string& title);

}  // namespace sc
