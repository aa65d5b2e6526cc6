// A checkpoint written the way the trainer writes one (run/checkpoint_store.h):
// files into the temporary directory, then the commit. For tests that need
// valid (or deliberately damaged) checkpoints without training.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "core/file_util.h"
#include "run/checkpoint_store.h"

namespace sc::testing {

inline Status write_checkpoint(const std::string& checkpoints_dir, int64_t step,
                               const std::function<Status(const std::string& dir)>& write_files, int keep_last = 0) {
  SC_RETURN_IF_ERROR(ensure_writable_directory(checkpoints_dir));
  SC_ASSIGN_OR_RETURN(std::string dir, make_checkpoint_temp_dir(checkpoints_dir, step));
  SC_RETURN_IF_ERROR(write_files(dir));
  return commit_checkpoint(checkpoints_dir, step, keep_last);
}

}  // namespace sc::testing
