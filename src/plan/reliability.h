// Interruptions, checkpoints and goodput (Young/Daly), then power, energy
// and cost, for a plan whose GPUs, parameters and compute days are known.
// docs/plan.md, "Reliability" and "Power, cost".
#pragma once

#include "plan/cost_model.h"

namespace sc::plan {

// Fills plan->reliability, effective_days, power, it/facility power,
// energy_mwh, gpu_hours and cost_usd.
void add_reliability_and_power(const ClusterSpec& cluster, Plan* plan);

}  // namespace sc::plan
