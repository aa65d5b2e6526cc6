// Settings that must be right before any math runs. The environment of these
// machines sets OPENBLAS_CORETYPE=Haswell, which halves OpenBLAS sgemm on
// AVX-512 cores; OpenBLAS reads it when the library loads, before main(), so
// the fix is to correct the variable and re-execute the program once.
#pragma once

#include <string>

namespace sc {

// Call first thing in main(). May not return (re-executes the binary). Returns
// a one-line description of what was set, for the log.
std::string tune_cpu_environment(char** argv);

}  // namespace sc
