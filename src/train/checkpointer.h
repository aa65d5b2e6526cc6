// A training run's checkpoints, written in the background
// (docs/checkpoint_format.md, "Asynchronous writing"): start() stages this
// rank's state (copies) and hands it to a writer thread while training goes
// on; every step's statistics exchange carries each rank's CheckpointPart;
// at the first step where every rank reports its part written, rank 0
// commits (run/checkpoint_store.h). At most one checkpoint is in flight.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/fault_injection.h"
#include "core/status.h"
#include "core/wall_clock.h"
#include "dist/communicator.h"
#include "model/config.h"
#include "model/model.h"
#include "run/event_log.h"
#include "run/run_paths.h"
#include "train/adamw.h"
#include "train/background_task.h"
#include "train/step_stats.h"
#include "train/trainer_state.h"

namespace sc {

// What a checkpoint holds, read when it is staged.
struct CheckpointSource {
  Model& model;                     // parameters (rank 0 writes them), layout
  const AdamW& adamw;               // this rank's moments and their segments
  const ModelConfig& config;        // rank 0
  std::string_view tokenizer_model;  // tokenizer.model's bytes, written into the checkpoint when not empty (rank 0)
  TrainerState state;               // rank 0
};

class Checkpointer {
 public:
  Checkpointer(const RunPaths& run, Communicator& comm, int keep_last, FaultInjector& faults, EventLog events,
               CollectiveTimeout timeout)
      : run_(run), comm_(comm), keep_last_(keep_last), faults_(faults), events_(std::move(events)), timeout_(timeout) {}
  // The writer reads the staging buffers and the model's layout.
  ~Checkpointer() { (void)writer_.wait(); }

  // Stages this rank's part of checkpoint `step` and starts writing it. A
  // checkpoint still in flight is flushed first (a barrier: every rank calls
  // this at the same step). Returns the stall: seconds since `stall`, the
  // caller's stopwatch started when it began waiting for the checkpoint.
  Result<double> start(int64_t step, const CheckpointSource& source, const Stopwatch& stall = Stopwatch());
  // This rank's part, for the step's exchange: kWritten or kFailed once the
  // writer has finished, kBusy while it runs or when nothing is in flight.
  CheckpointPart poll();
  // After the exchange: commits when every rank's part is written; when a
  // rank's failed, an error naming it (every rank returns it: nobody
  // commits a checkpoint with a part missing).
  Status after_exchange(const StepStats& step);
  // Waits for every rank's part (a barrier; every rank calls it) and commits.
  Status flush();

  // The newest checkpoint this run committed; empty if none yet.
  const std::string& last_committed() const { return last_committed_; }
  // Seconds the last commit stalled the step loop, reported once.
  std::optional<double> take_commit_s() { return std::exchange(commit_s_, std::nullopt); }

 private:
  bool root() const { return comm_.rank() == 0; }
  bool in_flight() const { return writing_step_ >= 0; }
  void stage(const CheckpointSource& source);
  Status write_files(const std::string& dir, int64_t step) const;
  Status collect_writer();  // waits for this rank's writer (once per checkpoint); its Status
  Status commit();          // every rank's files of writing_step_ are on disk

  RunPaths run_;
  Communicator& comm_;
  int keep_last_;
  FaultInjector& faults_;
  EventLog events_;  // a copy: cheap, and never dangles
  CollectiveTimeout timeout_;
  // Staged copies (the step loop changes the live buffers at once).
  std::vector<float> staged_params_, staged_m_, staged_v_;
  std::vector<OwnedSegment> segments_;
  const std::vector<TensorSpec>* layout_ = nullptr;
  size_t num_floats_ = 0;
  std::string config_json_, tokenizer_model_, state_json_;
  BackgroundTask writer_;
  bool writer_collected_ = true;
  Status writer_status_;
  int64_t writing_step_ = -1;  // files being written or written, not committed
  Stopwatch writing_clock_;
  double writing_stall_s_ = 0;
  std::optional<double> commit_s_;
  std::string last_committed_;
};

// Fills the model's parameters and this rank's moments from checkpoint `dir`
// (written on any number of ranks).
Status load_model_and_optimizer(const std::string& dir, Model& model, AdamW& adamw);

}  // namespace sc
