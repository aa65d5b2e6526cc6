// Small inline SVG charts for the planner's HTML report: no script, no
// external file, readable when printed. Labels are escaped here.
#pragma once

#include <string>
#include <vector>

namespace sc::plan {

struct BarSegment {
  std::string label;
  double value = 0;
  std::string color;  // CSS colour
};

// One horizontal bar split into segments, a legend with each segment's value
// and share, and an optional reference mark (e.g. GPU memory capacity).
std::string stacked_bar_svg(const std::vector<BarSegment>& segments, const std::string& unit, double reference = 0,
                            const std::string& reference_label = "");

// y against x with points marked and labelled; x on a log scale when
// `log_x` (GPU counts). Points with a NaN y are left out.
std::string line_chart_svg(const std::string& title, const std::vector<double>& x, const std::vector<double>& y,
                           const std::string& x_label, const std::string& y_label, bool log_x);


}  // namespace sc::plan
