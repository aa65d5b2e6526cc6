#include "train/checkpointer.h"


#include "core/file_util.h"
#include "core/log.h"
#include "model/weights_io.h"
#include "run/checkpoint_store.h"
#include "train/optimizer_shards.h"

namespace sc {

Result<double> Checkpointer::start(int64_t step, const CheckpointSource& source, const Stopwatch& stall) {
  SC_RETURN_IF_ERROR(flush());  // one checkpoint in flight at most
  SC_ASSIGN_OR_RETURN(const std::string dir, make_checkpoint_temp_dir(run_.checkpoints(), step));
  stage(source);
  writer_.start([this, dir, step] { return write_files(dir, step); });
  writing_step_ = step;
  writer_collected_ = false;
  writing_clock_ = Stopwatch();
  writing_stall_s_ = stall.seconds();
  return writing_stall_s_;
}

void Checkpointer::stage(const CheckpointSource& source) {
  const AdamW& adamw = source.adamw;
  staged_m_.assign(adamw.m(), adamw.m() + adamw.size());
  staged_v_.assign(adamw.v(), adamw.v() + adamw.size());
  segments_ = adamw.segments();
  layout_ = &source.model.layout();
  num_floats_ = source.model.num_floats();
  if (!root()) return;
  const float* params = source.model.params();
  staged_params_.assign(params, params + num_floats_);
  config_json_ = source.config.to_json().dump(2) + "\n";
  tokenizer_model_ = source.tokenizer_model;
  state_json_ = source.state.to_json().dump(2) + "\n";
}

Status Checkpointer::write_files(const std::string& dir, int64_t step) const {
  SC_RETURN_IF_ERROR(save_optimizer_shard(dir, comm_.rank(), comm_.size(), segments_, staged_m_, staged_v_,
                                          num_floats_, step));
  faults_.in_checkpoint_write(step);
  if (!root()) return Status();
  SC_RETURN_IF_ERROR(save_weights(dir + "/" + checkpoint_file::kModel, *layout_, staged_params_.data()));
  SC_RETURN_IF_ERROR(write_file_atomic(dir + "/" + checkpoint_file::kConfig, config_json_));
  if (!tokenizer_model_.empty()) {
    SC_RETURN_IF_ERROR(write_file_atomic(dir + "/" + checkpoint_file::kTokenizer, tokenizer_model_));
  }
  return write_file_atomic(dir + "/" + checkpoint_file::kTrainerState, state_json_);
}

CheckpointPart Checkpointer::poll() {
  if (!in_flight() || !writer_.finished()) return CheckpointPart::kBusy;
  return collect_writer().ok() ? CheckpointPart::kWritten : CheckpointPart::kFailed;
}

Status Checkpointer::after_exchange(const StepStats& step) {
  if (!in_flight()) return Status();
  if (step.checkpoint_failed_rank >= 0) {
    SC_RETURN_IF_ERROR(collect_writer());
    return Status::io_error("rank {} could not write its part of checkpoint {}", step.checkpoint_failed_rank,
                            checkpoint_dir_name(writing_step_));
  }
  return step.checkpoint_files_written ? commit() : Status();
}

Status Checkpointer::flush() {
  if (!in_flight()) return Status();
  SC_RETURN_IF_ERROR(collect_writer());
  SC_RETURN_IF_ERROR(comm_.barrier(timeout_));  // every rank's part is on disk
  return commit();
}

Status Checkpointer::collect_writer() {
  if (!writer_collected_) {
    writer_status_ = writer_.wait().with_context(
        fmt::format("rank {}: writing checkpoint {}", comm_.rank(), checkpoint_dir_name(writing_step_)));
    writer_collected_ = true;
  }
  return writer_status_;
}

Status Checkpointer::commit() {
  SC_RETURN_IF_ERROR(collect_writer());
  const Stopwatch commit;
  // Checksums every file into the manifest (reading them back from the page
  // cache): part of the step loop's stall, reported apart from the staging.
  if (root()) SC_RETURN_IF_ERROR(commit_checkpoint(run_.checkpoints(), writing_step_, keep_last_));
  commit_s_ = commit.seconds();
  events_.append({{"event", "checkpoint"},
                  {"step", writing_step_},
                  {"stall_s", writing_stall_s_ + *commit_s_},
                  {"commit_s", *commit_s_},
                  {"committed_after_s", writing_clock_.seconds()}});
  last_committed_ = run_.checkpoints() + "/" + checkpoint_dir_name(writing_step_);
  log_info("checkpoint {} committed {:.2f} s after its step; the step loop stalled {:.0f} ms staging it and {:.0f} ms "
           "committing it", last_committed_, writing_clock_.seconds(), 1e3 * writing_stall_s_, 1e3 * *commit_s_);
  writing_step_ = -1;
  return Status();
}

Status load_model_and_optimizer(const std::string& dir, Model& model, AdamW& adamw) {
  SC_RETURN_IF_ERROR(load_weights(dir + "/" + checkpoint_file::kModel, model.layout(), model.params()));
  return load_optimizer_shards(dir, adamw, model.num_floats());
}

}  // namespace sc
