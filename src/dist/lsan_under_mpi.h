// For sanitizer builds (docs/reliability.md): Open MPI does not free all of
// what MPI_Init allocates (its own docs ship a valgrind suppression file for
// this), partly from plugins it has unloaded by exit, whose frames no
// suppression can name. LeakSanitizer is therefore off in a process that
// mpirun started, and on everywhere else; AddressSanitizer's other checks
// stay on in both. Include this from exactly one file of each program that
// may run under mpirun (its main()).
#pragma once

#include <cstdlib>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SC_LSAN_UNDER_MPI_HOOK 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SC_LSAN_UNDER_MPI_HOOK 1
#endif

#ifdef SC_LSAN_UNDER_MPI_HOOK
// Called by LeakSanitizer at exit, when the environment is safe to read.
extern "C" int __lsan_is_turned_off() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr;
}
#endif
