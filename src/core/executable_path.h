// The real path of the running program, for starting more copies of it (the
// ranks of `launch`, the all-reduce worker of `plan --calibrate`) under
// mpirun. "/proc/self/exe" itself would name mpirun once mpirun resolves it.
#pragma once

#include <string>

#include "core/status.h"

namespace sc {

// The target of /proc/self/exe; an I/O error naming /proc/self/exe if it
// cannot be read (no procfs).
Result<std::string> executable_path();

}  // namespace sc
