// The command line of `supercluster launch`:
//   launch -np N [--max-restarts R] [--hang-timeout S] [--backoff S]
//          [--backoff-max S] [--kill-grace S] [--mpirun-arg ARG]... -- train ARGS...
// parsed by hand because `-np` (mpirun's spelling, which people type) is not
// an option name CLI11 accepts.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "launch/supervisor.h"

namespace sc {

struct LaunchRequest {
  int ranks = 0;
  int max_restarts = 3;
  double hang_timeout_s = 300;
  double backoff_s = 5;
  double backoff_max_s = 60;
  double kill_grace_s = 5;
  std::vector<std::string> mpirun_args;
  std::vector<std::string> train_args;  // after "--", starting with "train"
  std::string run_dir;                  // the --out of train_args
};

inline constexpr const char* kLaunchUsage =
    "usage: supercluster launch -np N [--max-restarts R] [--hang-timeout S] [--backoff S] [--backoff-max S]\n"
    "                           [--kill-grace S] [--mpirun-arg ARG]... -- train ARGS... (with --out RUN)";

Result<LaunchRequest> parse_launch_args(const std::vector<std::string>& args);

// The `--out` value of train arguments (`--out X` or `--out=X`); empty if absent.
std::string find_out_dir(const std::vector<std::string>& train_args);

// mpirun -np N <mpirun args> <binary> train ARGS...
std::vector<std::string> mpirun_command(const LaunchRequest& request, const std::string& binary);

// Supervisor options for the request, running `command`.
SupervisorOptions supervisor_options(const LaunchRequest& request, std::vector<std::string> command);

}  // namespace sc
