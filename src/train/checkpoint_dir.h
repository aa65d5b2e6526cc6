// The commit protocol of a checkpoint directory (docs/checkpoint_format.md):
// files are written into a hidden temporary directory, each checksummed into
// a manifest written last, the directory is fsynced and renamed to
// step_NNNNNNNN, and the `latest` pointer is replaced atomically. A crash at
// any point leaves the previous checkpoint valid; a checkpoint whose
// manifest is missing or does not match its files is never used.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sc {

struct CheckpointInfo {
  std::string path;  // .../checkpoints/step_NNNNNNNN
  int64_t step = 0;
};

// Writes checkpoint `step` under RUN/checkpoints. `write_files(dir)` puts the
// files into `dir` (each with write_file_atomic or AtomicFileWriter); then
// the manifest is written, the directory committed, `latest` updated and all
// but the newest `keep_last` checkpoints removed (0 keeps all).
Status commit_checkpoint(const std::string& checkpoints_dir, int64_t step,
                         const std::function<Status(const std::string& dir)>& write_files, int keep_last);

// The same protocol with several writers (data-parallel ranks): one process
// calls begin_checkpoint, which makes an empty temporary directory; every
// writer puts its files into checkpoint_temp_dir(); after all are done (a
// barrier), one process calls finish_checkpoint: manifest over every file,
// commit, `latest`, pruning. Until then the checkpoint does not exist.
Result<std::string> begin_checkpoint(const std::string& checkpoints_dir, int64_t step);
std::string checkpoint_temp_dir(const std::string& checkpoints_dir, int64_t step);
Status finish_checkpoint(const std::string& checkpoints_dir, int64_t step, int keep_last);

// Checks that `dir` has a manifest and every file it lists has the recorded
// size and checksum.
Status verify_checkpoint(const std::string& dir);

// The newest checkpoint that verifies, scanning step_* directories from
// newest to oldest (`latest` is for people and tools; the manifests decide).
// Each one skipped is described in `skipped`. NotFound if there is none.
Result<CheckpointInfo> find_latest_valid_checkpoint(const std::string& checkpoints_dir,
                                                    std::vector<std::string>* skipped);

std::string checkpoint_dir_name(int64_t step);

}  // namespace sc
