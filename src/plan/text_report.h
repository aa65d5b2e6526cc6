// What `supercluster plan` prints for a person (aligned text) and for a
// program (JSON with the keys docs/plan.md keeps stable).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plan/cost_model.h"
#include "plan/sweep.h"
#include "plan/validation.h"

namespace sc::plan {

// "TP8 PP16 (v8) DP128 CP1 EP1 mb1 zero1 recompute=selective"
std::string layout_text(const Layout& layout);
std::string format_plan(const Plan& plan);
std::string format_sweep(const std::vector<SweepPoint>& points);
nlohmann::json sweep_to_json(const std::vector<SweepPoint>& points);
std::string format_validation(const std::vector<ValidationRow>& rows);
nlohmann::json validation_to_json(const std::vector<ValidationRow>& rows);

}  // namespace sc::plan
