#include "core/cpu_tuning.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace sc {

std::string tune_cpu_environment(char** argv) {
  const char* current = std::getenv("OPENBLAS_CORETYPE");
  const bool reexecuted = std::getenv("SUPERCLUSTER_CPU_TUNED") != nullptr;
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (!avx512) return std::string("OpenBLAS core type ") + (current ? current : "chosen by OpenBLAS") + " (no AVX-512)";
  if (current && std::strcmp(current, "SkylakeX") == 0) {
    return reexecuted ? "OpenBLAS core type set to SkylakeX (AVX-512 found; the environment asked for another)"
                      : "OpenBLAS core type SkylakeX (AVX-512)";
  }
  if (reexecuted) return "OpenBLAS core type could not be changed; sgemm may run below this CPU's peak";
  ::setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  ::setenv("SUPERCLUSTER_CPU_TUNED", "1", 1);
  ::execv("/proc/self/exe", argv);
  return "OpenBLAS core type unchanged (re-exec failed)";
}

}  // namespace sc
