// Heartbeats: each training rank says, every step, where it is; the launcher
// reads them to see progress and to find a rank that stopped making any
// (docs/fault_tolerance.md). One small JSON file per rank,
//   DIR/rank-<r>.json = {"rank", "pid", "host", "step", "phase", "time"}
// replaced atomically (temporary file + rename) so a reader never sees half
// of one. No fsync: a heartbeat lost in a machine crash does not matter.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace sc {

inline constexpr const char* kHeartbeatDirEnvVar = "SUPERCLUSTER_HEARTBEAT_DIR";

// kCollective: computed its part of the step and now waiting for the other
// ranks. A rank stuck before that point leaves the oldest heartbeat, so the
// launcher names it rather than the ranks waiting for it.
enum class HeartbeatPhase { kSetup, kTrain, kEval, kCheckpoint, kCollective, kDone };
const char* heartbeat_phase_name(HeartbeatPhase phase);

struct Heartbeat {
  int rank = 0;
  int64_t pid = 0;
  std::string host;
  int64_t step = 0;   // optimizer steps completed (the step of metrics.jsonl and checkpoints)
  std::string phase;  // "setup", "train", "eval", "checkpoint", "collective", "done"
  double time = 0;    // unix seconds when written
};

class HeartbeatWriter {
 public:
  HeartbeatWriter() = default;  // disabled: beat() does nothing
  HeartbeatWriter(std::string dir, int rank);
  // Enabled when SUPERCLUSTER_HEARTBEAT_DIR is set (the launcher sets it).
  static HeartbeatWriter from_env(int rank);

  bool enabled() const { return !dir_.empty(); }
  // Writes this rank's heartbeat. Never fails the caller: a heartbeat that
  // cannot be written is logged once (the launcher will then see no
  // progress, which is the right outcome for a rank that cannot write).
  void beat(int64_t step, HeartbeatPhase phase);
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
  std::string temp_path_;
  std::string host_;
  int rank_ = 0;
  bool warned_ = false;
  bool dir_ready_ = false;
};

// Every rank's latest heartbeat in `dir`, sorted by rank. Files that are
// missing, partial or not heartbeats are skipped: the reader polls, and the
// next poll sees the next beat. A missing directory gives an empty list.
std::vector<Heartbeat> read_heartbeats(const std::string& dir);

// Removes every heartbeat (and leftover temporary) file from `dir`, creating
// the directory if needed: each attempt of a job starts with no beats.
Status clear_heartbeats(const std::string& dir);

}  // namespace sc
