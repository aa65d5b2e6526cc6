// The checkpoints of a run (docs/checkpoint_format.md): RUN/checkpoints/
// holds step_NNNNNNNN/ directories and `latest`. Writers put a checkpoint's
// files into a hidden temporary directory; one process then commits it:
// every file is checksummed into a manifest written last, the directory is
// fsynced and renamed to step_NNNNNNNN, and `latest` is replaced atomically.
// A crash at any point leaves the previous checkpoint valid; a checkpoint
// whose manifest is missing or does not match its files is never used.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace sc {

// The manifest's format_version: what this build writes, and the newest it
// reads. Raised whenever a checkpoint's files change in a way an older
// reader would misread.
inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointInfo {
  std::string path;  // .../checkpoints/step_NNNNNNNN
  int64_t step = 0;
};

std::string checkpoint_dir_name(int64_t step);

// Writing, with one writer or several (data-parallel ranks):
// 1. every writer calls make_checkpoint_temp_dir (whoever comes first makes
//    it) and writes its files there, each with write_file_atomic or
//    AtomicFileWriter;
// 2. after all are done (a barrier), one process calls commit_checkpoint:
//    manifest over every file, commit, `latest`, and all but the newest
//    `keep_last` checkpoints removed (0 keeps all). Files that come one per
//    rank ("optimizer-RRRRR-of-NNNNN...") must form a complete set.
// Until then the checkpoint does not exist. A failed commit removes the
// temporary directory.
Result<std::string> make_checkpoint_temp_dir(const std::string& checkpoints_dir, int64_t step);
Status commit_checkpoint(const std::string& checkpoints_dir, int64_t step, int keep_last);
// Temporary directories a crashed writer left: never committed, never read.
// Called by the one process that commits, before any writer starts.
void remove_uncommitted_checkpoints(const std::string& checkpoints_dir);

// Checks that `dir` has a manifest of a format this build reads and that
// every file it lists has the recorded size and checksum.
Status verify_checkpoint(const std::string& dir);

// The newest checkpoint that verifies, scanning step_* directories from
// newest to oldest (`latest` is for people and tools; the manifests decide).
// Each one skipped is described in `skipped`. NotFound if there is none.
Result<CheckpointInfo> find_latest_valid_checkpoint(const std::string& checkpoints_dir,
                                                    std::vector<std::string>* skipped);

// The steps of the committed checkpoints (step_NNNNNNNN directories) in
// `checkpoints_dir`, newest first, without verifying any: a cheap look for
// whether a newer one exists (`serve --follow` polls with it). Empty when
// there are none or the directory cannot be read.
std::vector<int64_t> committed_checkpoint_steps(const std::string& checkpoints_dir);

// What `generate` and `serve` accept: one checkpoint directory, a run's
// checkpoints/ directory, or a run directory; the newest valid checkpoint it
// holds, verified. Skipped checkpoints are logged as warnings.
Result<CheckpointInfo> resolve_checkpoint(const std::string& path);

// Whether `path` names one checkpoint rather than a run or its checkpoints/:
// a directory named step_NNNNNNNN, or one that resolve_checkpoint takes as a
// checkpoint itself (it holds a manifest or weights). Only looks.
bool is_one_checkpoint(const std::string& path);

}  // namespace sc
