// supercluster: one binary, one subcommand per job (src/cli/app.h).
#include <string>

#include "cli/app.h"
#include "core/cpu_tuning.h"
#include "dist/lsan_under_mpi.h"  // sanitizer builds: no leak report from Open MPI's own allocations

int main(int argc, char** argv) {
  const std::string cpu_tuning = sc::tune_cpu_environment(argv);  // may re-execute
  return sc::cli::run_main(argc, argv, cpu_tuning);
}
