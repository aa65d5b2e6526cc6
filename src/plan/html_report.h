// --html report.html: one self-contained page (inline CSS and SVG, no script)
// for someone who will not read JSON: the answer in sentences, then the step
// time, memory, scaling curve and power as charts, then the tables.
#pragma once

#include <string>
#include <vector>

#include "plan/cost_model.h"
#include "plan/sweep.h"

namespace sc::plan {

std::string render_html_report(const Plan& plan, const std::vector<SweepPoint>& sweep);

}  // namespace sc::plan
