// `supercluster plan --calibrate`: prints plan/calibrate.h's report (this
// machine's kernels beside the planner's curves) as text or JSON, and runs
// the rank side of its all-reduce measurement.
#pragma once

#include "core/status.h"
#include "plan/hardware.h"

namespace sc::cli {

Status run_plan_calibrate(const plan::ClusterSpec& cluster, bool json);

// The rank side of the all-reduce measurement: started twice by mpirun from
// plan::run_calibration as `supercluster plan --calibrate-allreduce-worker`;
// rank 0 prints one "allreduce <bytes> <seconds>" line per size.
Status run_allreduce_calibration_worker();

}  // namespace sc::cli
