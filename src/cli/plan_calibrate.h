// `supercluster plan --calibrate`: this machine's own kernels (the project's
// GEMM, attention, and an MPI all-reduce between 2 ranks) measured against
// their peaks, printed beside the efficiency curves the planner assumes for
// the cluster's GPUs and links (docs/plan.md, "Efficiency curves").
#pragma once

#include "core/status.h"
#include "plan/hardware.h"

namespace sc::cli {

Status run_plan_calibrate(const plan::ClusterSpec& cluster, bool json);

// The rank side of the all-reduce measurement: started twice by mpirun from
// run_plan_calibrate as `supercluster plan --calibrate-allreduce-worker`;
// rank 0 prints one "allreduce <bytes> <seconds>" line per size.
Status run_allreduce_calibration_worker();

}  // namespace sc::cli
