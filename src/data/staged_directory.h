// A directory replaced as a whole (prepare's output): everything is written
// into a hidden staging directory beside it, and commit() puts that in its
// place with one rename, so the output is always the previous one or the new
// one, whole, whatever fails or is killed. The protocol and what a killed
// run leaves behind are in docs/shard_format.md.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sc {

class StagedDirectory {
 public:
  // Prepares to replace `out_dir` (a symbolic link to a directory is
  // resolved: its target is replaced). Fails before any work is done when
  // `out_dir` exists and is not a directory, holds an entry for which
  // `replaceable(name)` is false (it would be lost), is a mount point, or
  // its parent is not writable. Cleans up after runs that died: their
  // staging directories are removed, an output one moved aside is restored.
  static Result<StagedDirectory> create(const std::string& out_dir,
                                        const std::function<bool(std::string_view name)>& replaceable);
  StagedDirectory(StagedDirectory&& other) noexcept;
  StagedDirectory& operator=(StagedDirectory&&) = delete;
  ~StagedDirectory();  // an uncommitted staging directory is removed

  // Where the new output is written.
  const std::string& path() const { return staging_; }
  // fsyncs the staging directory, swaps it into place, fsyncs the parent,
  // then removes the previous output.
  Status commit();

 private:
  StagedDirectory(std::string out, std::string staging) : out_(std::move(out)), staging_(std::move(staging)) {}
  std::string out_;      // absolute, symbolic links resolved
  std::string staging_;  // beside out_: PARENT/.NAME.staging.PID
};

// How commit() swaps a staged directory `staged` with an existing `out`:
// one atomic exchange (renameat2 RENAME_EXCHANGE) where the file system has
// it, after which the previous output is at `staged`. Without it, two
// renames: `out` to `aside`, then `staged` to `out`; a kill between them
// leaves no `out` but `aside`, which the next create() restores.
// exchange_directories gives false when the file system cannot exchange.
Result<bool> exchange_directories(const std::string& staged, const std::string& out);
Status replace_directory_by_renames(const std::string& staged, const std::string& out, const std::string& aside);

}  // namespace sc
