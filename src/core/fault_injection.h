// Faults injected on purpose, so tests can prove the run survives them
// (docs/fault_tolerance.md). The environment variable SUPERCLUSTER_FAULTS
// lists them, e.g. "kill:rank=1:step=5,hang:step=8,nan:step=3".
//
// Each fault fires at most once per run directory, across restarts: before
// firing, the rank creates RUN/faults/<index>-<kind>-rank<r>-step<s>.fired
// with O_EXCL and fsyncs it; a fault whose marker exists is inert. Without
// this, a restarted job would replay step 5 and be killed again forever.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sc {

inline constexpr const char* kFaultsEnvVar = "SUPERCLUSTER_FAULTS";

enum class FaultKind {
  kKill,             // SIGKILL itself at the start of the step
  kHang,             // sleep forever at the start of the step
  kNan,              // the trainer poisons the loss / gradients of the step
  kCheckpointCrash,  // SIGKILL itself in the middle of writing the step's checkpoint
  kThrow,            // throw std::runtime_error at the start of the step: an escaped exception (a bug)
};

const char* fault_kind_name(FaultKind kind);

struct FaultSpec {
  int index = 0;  // position in the list, 0-based; names the marker file
  FaultKind kind = FaultKind::kKill;
  std::optional<int> rank;  // empty: every rank (each rank fires its own copy once)
  int64_t step = 0;         // 1-based step at which it fires
};

// Parses the SUPERCLUSTER_FAULTS syntax: comma-separated entries
// KIND[:rank=R]:step=S. Empty or blank text is an empty list.
Result<std::vector<FaultSpec>> parse_fault_specs(std::string_view text);

class FaultInjector {
 public:
  FaultInjector() = default;  // inert; movable, not copyable

  // Reads SUPERCLUSTER_FAULTS; unset or empty gives an inert injector.
  static Result<FaultInjector> from_env(const std::string& run_dir, int rank);
  static Result<FaultInjector> from_spec(std::string_view spec, const std::string& run_dir, int rank);

  // Call before running step `step` (1-based). Fires a due kill (never
  // returns), hang (never returns) or throw.
  void at_step_start(int64_t step);
  // True once when a nan fault is due at `step`: the caller poisons the loss.
  bool poison_now(int64_t step);
  // Call while the checkpoint of `step` is half written (some files written,
  // no manifest yet). Fires a due checkpoint_crash (never returns).
  void in_checkpoint_write(int64_t step);

  // True when no fault applies to this rank (nothing to check per step).
  bool empty() const { return faults_.empty(); }
  // The faults that apply to this rank, including ones already fired.
  const std::vector<FaultSpec>& faults() const { return faults_; }
  // The marker file of `fault` for this rank.
  std::string marker_path(const FaultSpec& fault) const;

 private:
  // Claims the fault by creating its marker; false when it already fired
  // (now or in an earlier process) or the marker cannot be written.
  bool claim(const FaultSpec& fault);
  const FaultSpec* due(FaultKind kind, int64_t step) const;

  std::string run_dir_;
  int rank_ = 0;
  std::vector<FaultSpec> faults_;  // only those for this rank
  std::vector<bool> done_;         // parallel to faults_: claimed or found fired
  // in_checkpoint_write may run on a background checkpoint thread.
  std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
};

}  // namespace sc
