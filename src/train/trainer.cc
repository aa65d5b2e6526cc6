#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "core/arena.h"
#include "core/fault_injection.h"
#include "core/file_util.h"
#include "core/human_format.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "core/wall_clock.h"
#include "data/loader.h"
#include "dist/communicator.h"
#include "kernels/matmul.h"
#include "kernels/peak.h"
#include "model/model.h"
#include "run/checkpoint_store.h"
#include "run/event_log.h"
#include "run/heartbeat.h"
#include "run/run_directory.h"
#include "run/metrics_log.h"
#include "run/run_paths.h"
#include "train/adamw.h"
#include "train/checkpointer.h"
#include "train/data_parallel.h"
#include "train/loss_guard.h"
#include "train/loss_plot.h"
#include "train/lr_schedule.h"
#include "train/progress_report.h"
#include "train/router_health.h"
#include "train/step_stats.h"
#include "train/train_options.h"
#include "train/trainer_state.h"

namespace sc {

namespace {

// No collective waits longer than this: a rank that died or hangs turns into
// an error on the others instead of a job that never ends.
constexpr CollectiveTimeout kCollectiveTimeout{std::chrono::minutes(10)};

// Steps an expert may receive no tokens before the router is said to collapse.
constexpr int64_t kRouterCollapseSteps = 50;

// This rank's part of a step: its statistics for the exchange, and the time
// its forward waited for parameters (not exchanged).
struct LocalStep {
  RankStepStats stats;
  double gather_wait_s = 0;
};

// One step after the exchange: its global figures, and whether the update
// was applied (the loss guard may skip it or roll back).
struct StepOutcome {
  bool applied = false;
  StepStats stats;
  double grad_norm = 0;
  double lr = 0;
  double comm_wait_s = 0;    // communication backward did not hide
  uint64_t comm_bytes = 0;   // sent by this rank during the step
};

class Trainer {
 public:
  Trainer(TrainOptions options, ModelConfig config, std::unique_ptr<Communicator> comm, bool overwrite)
      : overwrite_(overwrite),
        o_(std::move(options)),
        config_(std::move(config)),
        comm_(std::move(comm)),
        run_(o_.out_dir),
        metrics_(run_.metrics()),
        events_(root() ? EventLog(run_.events(), "trainer") : EventLog()) {}

  Status setup();
  Status resume_from(const CheckpointInfo& checkpoint, const TrainerState& state);
  Result<TrainSummary> run();

 private:
  bool root() const { return comm_->rank() == 0; }
  int world() const { return comm_->size(); }
  int64_t last_step() const { return o_.stop_at_step > 0 ? o_.stop_at_step : o_.steps; }
  double tokens_per_step() const { return static_cast<double>(o_.global_batch * o_.seq_len); }

  // Setup, in order.
  Status open_data();
  Status build_model_and_optimizer();
  void log_setup(size_t threads) const;
  Status prepare_run_directory();

  // One step: gradients of this rank's micro-batches (the last backward
  // starts the buckets' reduce-scatters), the exchange, the loss guard's
  // verdict and, when applied, the update.
  Result<StepOutcome> run_step();
  Result<LocalStep> compute_gradients();
  Result<StepStats> exchange(LocalStep& mine, double* sum_squares);
  Status apply_update(StepOutcome& outcome, double gather_wait_s);
  // After an applied step: metrics, evaluation, checkpoint, progress line.
  Status record_step(const StepOutcome& outcome, ProgressReport& progress, int64_t first_step);
  std::string moe_metrics(const StepStats& stats, nlohmann::json& metrics);
  Status evaluate_and_checkpoint(bool final_step, nlohmann::json& metrics, double* val_loss);
  Result<double> evaluate();
  Result<double> start_checkpoint();
  // Back to the newest valid checkpoint, keeping the data cursor (so the
  // batches since then, the offending ones included, are not seen again).
  Status rollback(const std::string& why);
  Status write_loss_plot();
  TrainSummary summary(int64_t first_step, double seconds, double last_val) const;

  bool overwrite_;  // --overwrite: rank 0 removes the previous run's outputs first
  TrainOptions o_;
  ModelConfig config_;
  // Data parallelism (train/data_parallel.h): every rank holds the whole
  // model, runs its micro-batches of the global batch, and owns the
  // optimizer state of one shard of every gradient bucket (ZeRO-1). Rank 0
  // alone prints and writes, except each rank's optimizer shard.
  std::unique_ptr<Communicator> comm_;
  RunPaths run_;
  MetricsLog metrics_;
  EventLog events_;
  std::optional<GradientSync> sync_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Model> model_;
  std::optional<DataLoader> train_data_, val_data_;
  Arena optimizer_arena_;
  std::unique_ptr<AdamW> adamw_;
  LrSchedule schedule_;
  std::vector<uint32_t> inputs_, targets_;
  int64_t step_ = 0;  // optimizer steps done
  double tokens_seen_ = 0;
  double peak_gflops_ = 0;  // this rank's threads; the job's peak is world() times it
  int64_t flops_per_token_ = 0;
  std::vector<LossPoint> train_history_, val_history_;
  std::string resumed_from_;
  LossGuard guard_;
  // Rollbacks since the run last got past the step where it rolled back.
  int64_t rolled_back_from_ = -1, rollbacks_in_a_row_ = 0;
  FaultInjector faults_;
  HeartbeatWriter heartbeat_;
  std::optional<RouterHealth> router_health_;
  double elapsed_before_s_ = 0;  // training time of earlier (resumed) segments
  Stopwatch run_clock_;              // this segment's training time
  // Last: its destructor waits for the writer, which reads the model and faults_.
  std::optional<Checkpointer> checkpointer_;
};

Status Trainer::setup() {
  SC_RETURN_IF_ERROR(o_.validate());
  SC_RETURN_IF_ERROR(o_.check_for_model(config_));
  SC_RETURN_IF_ERROR(o_.resolve_batch(world()));
  heartbeat_ = HeartbeatWriter::from_env(comm_->rank());
  heartbeat_.beat(0, HeartbeatPhase::kSetup);
  SC_ASSIGN_OR_RETURN(faults_, FaultInjector::from_env(o_.out_dir, comm_->rank()));
  guard_ = LossGuard({.spike_factor = o_.spike_factor, .window = 20, .max_bad_in_row = static_cast<int>(o_.max_bad_steps)});
  // Ranks on one machine share its cores.
  const size_t threads = o_.threads > 0 ? static_cast<size_t>(o_.threads)
                                        : std::max<size_t>(1, default_thread_count() / static_cast<size_t>(world()));
  pool_ = std::make_unique<ThreadPool>(threads);
  blas_init_single_threaded();
  SC_RETURN_IF_ERROR(open_data());
  SC_RETURN_IF_ERROR(build_model_and_optimizer());
  checkpointer_.emplace(run_, *comm_, static_cast<int>(o_.keep_checkpoints), faults_, events_, kCollectiveTimeout);
  flops_per_token_ = model_flops_per_token(config_, o_.seq_len);
  peak_gflops_ = matmul_peak_gflops(*pool_);
  log_setup(threads);
  return prepare_run_directory();
}

Status Trainer::open_data() {
  const uint32_t vocab = static_cast<uint32_t>(config_.vocab_size);
  LoaderOptions train_options{.batch_size = static_cast<uint32_t>(o_.batch_size),
                              .seq_len = static_cast<uint32_t>(o_.seq_len),
                              .seed = o_.seed,
                              .expected_vocab_size = vocab};
  auto train = DataLoader::open(o_.data_dir, "train", train_options);
  if (!train.ok()) return train.status().with_context("training data");
  train_data_.emplace(std::move(train).value());
  LoaderOptions val_options = train_options;
  val_options.shuffle = false;
  auto val = DataLoader::open(o_.data_dir, "val", val_options);
  if (val.ok()) {
    val_data_.emplace(std::move(val).value());
  } else if (val.status().code() == StatusCode::kCorruption) {
    return val.status().with_context("validation data");
  } else {
    log_warn("no validation loss: {}", val.status().message());
  }
  return Status();
}

Status Trainer::build_model_and_optimizer() {
  SC_ASSIGN_OR_RETURN(model_, Model::create(config_, o_.batch_size, o_.seq_len, *pool_, BucketPlan::granule(world())));
  model_->init_weights(o_.seed);
  SC_ASSIGN_OR_RETURN(BucketPlan plan, BucketPlan::make(model_->buffer_floats(), world(),
                                                        static_cast<size_t>(o_.bucket_mb * 1e6 / sizeof(float))));
  const size_t owned = plan.owned_floats();
  SC_ASSIGN_OR_RETURN(optimizer_arena_, Arena::create(2 * owned * sizeof(float) + 128, "optimizer"));
  SC_ASSIGN_OR_RETURN(float* m, optimizer_arena_.allocate<float>(owned));
  SC_ASSIGN_OR_RETURN(float* v, optimizer_arena_.allocate<float>(owned));
  adamw_ = std::make_unique<AdamW>(AdamWConfig{o_.beta1, o_.beta2, 1e-8, o_.weight_decay},
                                   decay_ranges(model_->layout()), plan.owned(comm_->rank()), m, v, owned);
  SC_ASSIGN_OR_RETURN(GradientSync sync, GradientSync::create(*comm_, *pool_, std::move(plan), model_->grads(),
                                                              model_->params(), static_cast<int>(o_.grad_accum)));
  sync_.emplace(std::move(sync));
  schedule_ = {o_.lr, o_.min_lr, o_.warmup_steps(), o_.steps};
  router_health_.emplace(model_->moe_stats().size(), std::max<int64_t>(config_.num_experts, 0), kRouterCollapseSteps);
  inputs_.resize(static_cast<size_t>(o_.batch_size * o_.seq_len));
  targets_.resize(inputs_.size());
  return Status();
}

void Trainer::log_setup(size_t threads) const {
  const ParameterCounts counts = count_parameters(config_);
  const size_t owned = adamw_->size();
  log_info("model {}: {} parameters{}, {} layers, hidden {}, vocab {}; {:.1f} MFLOP per token (6N + attention)",
           o_.config, human_count(static_cast<double>(counts.total)),
           config_.is_moe() ? fmt::format(" ({} active per token, {} experts top-{})",
                                          human_count(static_cast<double>(counts.active)), config_.num_experts,
                                          config_.num_experts_per_tok)
                            : "",
           config_.num_hidden_layers,
           config_.hidden_size, config_.vocab_size, static_cast<double>(flops_per_token_) / 1e6);
  log_info("memory per rank: {:.1f} MB parameters+gradients, {:.1f} MB optimizer{}, {:.1f} MB activations",
           static_cast<double>(2 * model_->buffer_floats() * 4) / 1e6, static_cast<double>(2 * owned * 4) / 1e6,
           world() > 1 ? fmt::format(" (1/{} shard, ZeRO-1)", world()) : "",
           static_cast<double>(model_->activation_bytes()) / 1e6);
  log_info("data: {} train tokens{}; batch {} x {} tokens x {} accum x {} rank{} = {} tokens per step",
           human_count(static_cast<double>(train_data_->total_tokens())),
           val_data_ ? fmt::format(", {} val tokens", human_count(static_cast<double>(val_data_->total_tokens()))) : "",
           o_.batch_size, o_.seq_len, o_.grad_accum, world(), world() > 1 ? "s" : "", o_.global_batch * o_.seq_len);
  log_info("{} thread{}{}; {}; MFU is against the best measured fp32 sgemm peak of {}, {:.0f} GFLOP/s", threads,
           threads > 1 ? "s" : "", world() > 1 ? " per rank" : "", blas_description(),
           world() > 1 ? fmt::format("{} ranks' threads", world()) : std::string("these threads"),
           peak_gflops_ * world());
  if (world() > 1) {
    log_info("data parallel: {} ranks ({}), {} gradient buckets of up to {:.0f} MB over {} floats; reduce-scatters "
             "overlap backward, parameter all-gathers the next forward", world(), comm_->backend_name(),
             sync_->plan().buckets().size(), o_.bucket_mb, model_->buffer_floats());
  }
}

Status Trainer::prepare_run_directory() {
  if (root()) {
    SC_RETURN_IF_ERROR(ensure_writable_directory(o_.out_dir));
    if (overwrite_) {
      const ExistingRun previous = find_existing_run(run_);
      if (!previous.empty()) {
        log_warn("--overwrite: removing the previous run in {}: {}", o_.out_dir, previous.describe());
        events_.append({{"event", "overwrite"}, {"removed", previous.describe()}});
      }
      SC_RETURN_IF_ERROR(remove_run_outputs(run_));
    }
    // Left by a crashed earlier attempt; gone before any rank writes a new one.
    remove_uncommitted_checkpoints(run_.checkpoints());
  }
  // No rank touches the run directory before rank 0 has made it.
  return comm_->barrier(kCollectiveTimeout);
}

Status Trainer::resume_from(const CheckpointInfo& checkpoint, const TrainerState& state) {
  const std::string& dir = checkpoint.path;
  SC_RETURN_IF_ERROR(load_model_and_optimizer(dir, *model_, *adamw_));
  SC_ASSIGN_OR_RETURN(LoaderCursor cursor, LoaderCursor::from_json(state.data_cursor));
  SC_RETURN_IF_ERROR(train_data_->restore(cursor).with_context(dir));
  step_ = state.step;
  tokens_seen_ = state.tokens_seen;
  elapsed_before_s_ = state.elapsed_s;
  SC_RETURN_IF_ERROR(guard_.restore(state.loss_guard, dir + "/" + checkpoint_file::kTrainerState + " 'loss_guard'"));
  // Earlier history: metrics.jsonl up to this step (later lines belong to the lost segment).
  train_history_.clear();
  val_history_.clear();
  Status status;
  for (const MetricsRecord& record : metrics_.keep_through_step(step_, root(), &status)) {
    if (record.loss) train_history_.push_back({static_cast<double>(record.step), *record.loss});
    if (record.val_loss) val_history_.push_back({static_cast<double>(record.step), *record.val_loss});
  }
  SC_RETURN_IF_ERROR(status);
  resumed_from_ = dir;
  heartbeat_.beat(step_, HeartbeatPhase::kSetup);
  log_info("resumed from {} at step {}{}", dir, step_,
           state.world_size != world()
               ? fmt::format(" (written on {} rank{}, resharded to {})", state.world_size,
                             state.world_size > 1 ? "s" : "", world())
               : "");
  return Status();
}

Result<TrainSummary> Trainer::run() {
  if (step_ == 0 && root()) SC_RETURN_IF_ERROR(metrics_.start_empty());
  run_clock_ = Stopwatch();
  const int64_t first_step = step_;
  ProgressReport progress(static_cast<double>(flops_per_token_), peak_gflops_ * world() * 1e9, root());
  bool stopped_by_time = false;
  while (step_ < last_step()) {
    SC_ASSIGN_OR_RETURN(const StepOutcome outcome, run_step());
    if (outcome.applied) SC_RETURN_IF_ERROR(record_step(outcome, progress, first_step));
    if (outcome.stats.time_up && step_ < last_step()) {
      if (!outcome.applied) {
        // The promised checkpoint at the time limit (of the last applied step).
        SC_RETURN_IF_ERROR(start_checkpoint().status());
        SC_RETURN_IF_ERROR(checkpointer_->flush());
      }
      stopped_by_time = true;
      break;
    }
  }
  SC_RETURN_IF_ERROR(sync_->finish_gather_params(kCollectiveTimeout));
  SC_RETURN_IF_ERROR(checkpointer_->flush());
  heartbeat_.beat(step_, HeartbeatPhase::kDone);
  progress.finish();
  if (stopped_by_time) log_info("time limit of {} min reached at step {}", o_.time_limit_min, step_);
  return summary(first_step, run_clock_.seconds(), val_history_.empty() ? -1.0 : val_history_.back().loss);
}

Result<StepOutcome> Trainer::run_step() {
  faults_.at_step_start(step_ + 1);
  const uint64_t bytes_before = comm_->bytes_sent();
  SC_ASSIGN_OR_RETURN(LocalStep mine, compute_gradients());
  if (faults_.poison_now(step_ + 1)) mine.stats.loss[0] = std::numeric_limits<double>::quiet_NaN();
  // Communication that backward did not hide: the rest of the
  // reduce-scatters, the norm/statistics exchange, the parameter all-gather.
  heartbeat_.beat(step_, HeartbeatPhase::kCollective);
  const Stopwatch comm_wait;
  double sum_squares = 0;
  StepOutcome outcome;
  SC_ASSIGN_OR_RETURN(outcome.stats, exchange(mine, &sum_squares));
  outcome.comm_wait_s = comm_wait.seconds();
  outcome.grad_norm = std::sqrt(sum_squares);
  SC_RETURN_IF_ERROR(checkpointer_->after_exchange(outcome.stats));
  std::string why;
  const LossGuard::Verdict verdict = guard_.check(outcome.stats.loss, outcome.grad_norm, &why);
  if (verdict == LossGuard::Verdict::kSkip) {
    // Every rank reached this verdict from the same numbers; one says so.
    if (root()) log_warn("step {}: {}; update skipped, the step is redone with the next batch", step_ + 1, why);
    events_.append({{"event", "skipped_step"}, {"step", step_ + 1}, {"reason", why}});
  } else if (verdict == LossGuard::Verdict::kRollback) {
    SC_RETURN_IF_ERROR(rollback(why));
  } else {
    SC_RETURN_IF_ERROR(apply_update(outcome, mine.gather_wait_s));
  }
  outcome.comm_bytes = comm_->bytes_sent() - bytes_before;
  return outcome;
}

Result<LocalStep> Trainer::compute_gradients() {
  LocalStep mine;
  const size_t layers = model_->moe_stats().size();
  const size_t experts = static_cast<size_t>(std::max<int64_t>(config_.num_experts, 0));
  mine.stats.routed.assign(layers * experts, 0);
  const int64_t accum = o_.grad_accum;
  // Rank r runs global micro-batches [r·accum, (r+1)·accum) of the step.
  const uint64_t first_window = static_cast<uint64_t>(comm_->rank() * accum * o_.batch_size);
  Status hook_status;
  for (int64_t micro = 0; micro < accum; ++micro) {
    model_->zero_grads();
    train_data_->read_batch_at(first_window + static_cast<uint64_t>(micro * o_.batch_size), inputs_.data(),
                               targets_.data());
    // The parameter all-gathers of the last update finish layer by layer.
    SC_ASSIGN_OR_RETURN(CrossEntropySums sums, model_->forward(inputs_.data(), targets_.data(), [&](size_t end) {
      const Stopwatch wait;
      Status status = sync_->params_needed(end, kCollectiveTimeout);
      mine.gather_wait_s += wait.seconds();
      return status;
    }));
    mine.stats.loss.push_back(sums.loss_sum / static_cast<double>(sums.count));
    mine.stats.aux.push_back(model_->aux_loss());
    mine.stats.z.push_back(model_->z_loss());
    for (size_t l = 0; l < layers; ++l) {
      const MoeStats& stats = model_->moe_stats()[l];
      for (size_t e = 0; e < stats.routed.size(); ++e) mine.stats.routed[l * experts + e] += stats.routed[e];
      mine.stats.dropped += stats.dropped;
    }
    // Every micro-batch's mean loss weighs 1/G in the step's loss.
    const double global_micro = static_cast<double>(accum * world());
    const float dloss = static_cast<float>(1.0 / (static_cast<double>(sums.count) * global_micro));
    if (micro + 1 < accum) {
      model_->backward(dloss);
      SC_RETURN_IF_ERROR(sync_->accumulate());
    } else {
      // The last micro-batch: buckets are reduce-scattered as backward finishes them.
      model_->backward(dloss, [&](size_t offset) {
        if (hook_status.ok()) hook_status = sync_->grads_final(offset);
      });
    }
  }
  train_data_->advance(static_cast<uint64_t>(o_.global_batch));
  SC_RETURN_IF_ERROR(hook_status);
  return mine;
}

Result<StepStats> Trainer::exchange(LocalStep& mine, double* sum_squares) {
  SC_RETURN_IF_ERROR(sync_->finish_reduce(kCollectiveTimeout));
  // The time limit is decided together: one rank stopping alone would leave
  // the others waiting in the next collective.
  mine.stats.time_up = o_.time_limit_min > 0 && run_clock_.seconds() >= o_.time_limit_min * 60.0;
  mine.stats.checkpoint = checkpointer_->poll();
  SC_ASSIGN_OR_RETURN(GradientSync::Exchanged exchanged,
                      sync_->exchange(pack_step_stats(mine.stats), kCollectiveTimeout));
  *sum_squares = exchanged.sum_squares;
  std::vector<RankStepStats> by_rank;
  for (const std::vector<double>& packed : exchanged.by_rank) {
    SC_ASSIGN_OR_RETURN(RankStepStats stats, unpack_step_stats(packed, static_cast<size_t>(o_.grad_accum),
                                                               mine.stats.routed.size()));
    by_rank.push_back(std::move(stats));
  }
  const size_t experts = static_cast<size_t>(std::max<int64_t>(config_.num_experts, 0));
  return combine_step_stats(by_rank, model_->moe_stats().size(), experts);
}

Status Trainer::apply_update(StepOutcome& outcome, double gather_wait_s) {
  outcome.applied = true;
  outcome.lr = schedule_.at(step_);
  ++step_;
  if (step_ > rolled_back_from_) rollbacks_in_a_row_ = 0;
  adamw_->update(model_->params(), model_->grads(), outcome.lr, step_, *pool_,
                 clip_coefficient(outcome.grad_norm, o_.grad_clip));
  // Finished by the next forward, layer by layer (or before anything else
  // touches the parameters).
  SC_RETURN_IF_ERROR(sync_->start_gather_params());
  outcome.comm_wait_s += gather_wait_s;
  heartbeat_.beat(step_, HeartbeatPhase::kTrain);
  tokens_seen_ += tokens_per_step();
  return Status();
}

Status Trainer::record_step(const StepOutcome& outcome, ProgressReport& progress, int64_t first_step) {
  const double now = run_clock_.seconds();
  progress.count_step(tokens_per_step(), now, step_ == first_step + 1 || step_ == last_step());
  nlohmann::json metrics = {{"step", step_},
                            {"loss", outcome.stats.loss},
                            {"lr", outcome.lr},
                            {"grad_norm", outcome.grad_norm},
                            {"tokens_per_s", progress.tokens_per_s()},
                            {"mfu", progress.mfu()},
                            {"tokens", tokens_seen_},
                            {"elapsed_s", elapsed_before_s_ + now}};
  if (const std::optional<double> commit_s = checkpointer_->take_commit_s()) metrics["checkpoint_commit_s"] = *commit_s;
  if (world() > 1) {
    metrics["comm_bytes"] = outcome.comm_bytes;  // sent by this rank (rank 0)
    metrics["comm_wait_s"] = outcome.comm_wait_s;
  }
  train_history_.push_back({static_cast<double>(step_), outcome.stats.loss});
  const std::string balance_text = moe_metrics(outcome.stats, metrics);
  const bool final_step = step_ == last_step() || outcome.stats.time_up;
  double val_loss = val_history_.empty() ? -1.0 : val_history_.back().loss;
  SC_RETURN_IF_ERROR(evaluate_and_checkpoint(final_step, metrics, &val_loss));
  if (root()) SC_RETURN_IF_ERROR(metrics_.append(metrics));
  const double eta_s =
      static_cast<double>(last_step() - step_) * (now / static_cast<double>(std::max<int64_t>(1, step_ - first_step)));
  progress.show({.step = step_, .steps = o_.steps, .loss = outcome.stats.loss, .val_loss = val_loss, .lr = outcome.lr,
                 .extra = balance_text, .eta_s = eta_s},
                now, final_step || metrics.contains("val_loss"));
  return Status();
}

// Router figures of a MoE step into `metrics`; the progress line's part.
std::string Trainer::moe_metrics(const StepStats& stats, nlohmann::json& metrics) {
  if (model_->moe_stats().empty()) return "";
  const double balance = RouterHealth::balance(stats.expert_tokens);
  for (const std::string& warning : router_health_->update(stats.expert_tokens)) log_warn("{}", warning);
  metrics["aux_loss"] = stats.aux;
  metrics["z_loss"] = stats.z;
  metrics["expert_tokens"] = stats.expert_tokens;
  metrics["expert_balance"] = balance;
  if (config_.capacity_factor > 0) metrics["dropped_assignments"] = stats.dropped;
  return fmt::format(" | balance {:.2f}", balance);
}

Status Trainer::evaluate_and_checkpoint(bool final_step, nlohmann::json& metrics, double* val_loss) {
  if ((o_.eval_every > 0 && step_ % o_.eval_every == 0) || final_step) {
    heartbeat_.beat(step_, HeartbeatPhase::kEval);
    SC_ASSIGN_OR_RETURN(*val_loss, evaluate());
    if (*val_loss >= 0) {
      metrics["val_loss"] = *val_loss;
      val_history_.push_back({static_cast<double>(step_), *val_loss});
    }
    SC_RETURN_IF_ERROR(write_loss_plot());
  }
  if ((o_.checkpoint_every > 0 && step_ % o_.checkpoint_every == 0) || final_step) {
    SC_ASSIGN_OR_RETURN(const double stall_s, start_checkpoint());
    if (final_step || o_.async_checkpoint == 0) SC_RETURN_IF_ERROR(checkpointer_->flush());
    metrics["checkpoint_stall_s"] = stall_s;
  }
  return Status();
}

Result<double> Trainer::evaluate() {
  if (!val_data_) return -1.0;
  SC_RETURN_IF_ERROR(sync_->finish_gather_params(kCollectiveTimeout));
  val_data_->rewind();
  const uint64_t batches = std::max<uint64_t>(
      1, std::min<uint64_t>(static_cast<uint64_t>(o_.eval_batches), val_data_->total_windows() / o_.batch_size));
  // Ranks split the batches (rank r takes b = r, r + ranks, ...) and the
  // per-batch sums are added in batch order: the same value on any number
  // of ranks.
  const uint64_t ranks = static_cast<uint64_t>(world()), per_rank = (batches + ranks - 1) / ranks;
  std::vector<double> local(2 * per_rank, 0.0);
  for (uint64_t i = 0; i < per_rank; ++i) {
    const uint64_t b = i * ranks + static_cast<uint64_t>(comm_->rank());
    if (b >= batches) break;
    val_data_->read_batch_at(b * static_cast<uint64_t>(o_.batch_size), inputs_.data(), targets_.data());
    SC_ASSIGN_OR_RETURN(CrossEntropySums sums, model_->forward(inputs_.data(), targets_.data()));
    local[2 * i] = sums.loss_sum;
    local[2 * i + 1] = static_cast<double>(sums.count);
  }
  SC_ASSIGN_OR_RETURN(auto by_rank, all_gather_doubles(*comm_, local, kCollectiveTimeout));
  double loss_sum = 0, count = 0;
  for (uint64_t b = 0; b < batches; ++b) {
    loss_sum += by_rank[b % ranks][2 * (b / ranks)];
    count += by_rank[b % ranks][2 * (b / ranks) + 1];
  }
  return loss_sum / count;
}

Result<double> Trainer::start_checkpoint() {
  const Stopwatch stall;
  SC_RETURN_IF_ERROR(sync_->finish_gather_params(kCollectiveTimeout));  // the parameters it stages
  SC_RETURN_IF_ERROR(checkpointer_->flush());  // one checkpoint in flight at most
  heartbeat_.beat(step_, HeartbeatPhase::kCheckpoint);
  TrainerState state{.step = step_,
                     .tokens_seen = tokens_seen_,
                     .elapsed_s = elapsed_before_s_ + run_clock_.seconds(),
                     .world_size = world(),
                     .options = o_.to_json(),
                     .seed = o_.seed,
                     .data_cursor = train_data_->cursor().to_json(),
                     .loss_guard = guard_.state()};
  return checkpointer_->start(step_,
                              {.model = *model_,
                               .adamw = *adamw_,
                               .config = config_,
                               .tokenizer_model = train_data_->tokenizer_model(),
                               .state = std::move(state)},
                              stall);
}

Status Trainer::rollback(const std::string& why) {
  SC_RETURN_IF_ERROR(sync_->finish_gather_params(kCollectiveTimeout));  // before loading over the parameters
  SC_RETURN_IF_ERROR(checkpointer_->flush());
  // Rank 0 picks the checkpoint (after its own commit and pruning) and every
  // rank loads that one: ranks scanning the directory themselves could see
  // it before and after rank 0's rename and load different steps.
  int64_t target = -1;
  if (root()) {
    std::vector<std::string> skipped;
    auto found = find_latest_valid_checkpoint(run_.checkpoints(), &skipped);
    if (found.ok()) target = found->step;
    for (const std::string& s : skipped) log_warn("skipping checkpoint: {}", s);
  }
  SC_RETURN_IF_ERROR(comm_->broadcast({reinterpret_cast<std::byte*>(&target), sizeof(target)}, 0, kCollectiveTimeout));
  if (target < 0) {
    return Status::internal("step {}: {}; {} bad steps in a row and no checkpoint to roll back to", step_ + 1, why,
                            o_.max_bad_steps);
  }
  if (++rollbacks_in_a_row_ >= 3) {
    return Status::internal("step {}: {}; rolled back three times without getting past step {}; lower --lr or "
                            "check the data", step_ + 1, why, rolled_back_from_);
  }
  rolled_back_from_ = std::max(rolled_back_from_, step_ + 1);
  const CheckpointInfo checkpoint{run_.checkpoints() + "/" + checkpoint_dir_name(target), target};
  const LoaderCursor past_the_bad_batches = train_data_->cursor();
  const int64_t from = step_;
  SC_ASSIGN_OR_RETURN(const TrainerState state, TrainerState::load(checkpoint.path));
  SC_RETURN_IF_ERROR(resume_from(checkpoint, state));
  SC_RETURN_IF_ERROR(train_data_->restore(past_the_bad_batches));
  // Training time of the kept steps: the checkpoint's, plus what follows.
  elapsed_before_s_ -= run_clock_.seconds();
  if (root()) {
    log_warn("step {}: {}; rolled back to {} (step {}) and skipping the batches since", from + 1, why,
             checkpoint.path, target);
  }
  events_.append({{"event", "rollback"}, {"step", from + 1}, {"to_step", target}, {"reason", why}});
  return Status();
}

Status Trainer::write_loss_plot() {
  if (!root()) return Status();
  return write_file_atomic(run_.loss_plot(), render_loss_svg(train_history_, val_history_,
                                                             fmt::format("{} on {}", o_.config, o_.data_dir)));
}

TrainSummary Trainer::summary(int64_t first_step, double seconds, double last_val) const {
  TrainSummary summary;
  summary.last_step = step_;
  const size_t tail = std::min<size_t>(train_history_.size(), 20);
  for (size_t i = train_history_.size() - tail; i < train_history_.size(); ++i) summary.train_loss += train_history_[i].loss;
  summary.train_loss /= std::max<size_t>(1, tail);
  summary.val_loss = last_val;
  summary.tokens_per_s = (tokens_seen_ - static_cast<double>(first_step) * tokens_per_step()) / std::max(1e-9, seconds);
  summary.mfu = summary.tokens_per_s * static_cast<double>(flops_per_token_) / (peak_gflops_ * world() * 1e9);
  summary.checkpoint = checkpointer_->last_committed().empty() ? resumed_from_ : checkpointer_->last_committed();
  summary.reporting_rank = root();
  return summary;
}

}  // namespace

Result<std::string> training_dry_run(const TrainRequest& request) {
  SC_ASSIGN_OR_RETURN(const ResolvedRun run, resolve_run(request.overrides, request.resume));
  SC_RETURN_IF_ERROR(run.options.validate_numbers());
  SC_RETURN_IF_ERROR(run.options.check_for_model(run.config));
  return format_counts_report(run.config, run.options.batch_size, run.options.seq_len);
}

Result<TrainSummary> run_training(const TrainRequest& request) {
  if (request.resume && request.overwrite) return Status::invalid("--resume and --overwrite exclude each other");
  SC_ASSIGN_OR_RETURN(ResolvedRun run, resolve_run(request.overrides, request.resume));
  if (!request.resume && !request.overwrite) SC_RETURN_IF_ERROR(check_new_run_directory(run.options));
  SC_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, make_communicator());
  Communicator* comm_view = comm.get();
  if (comm->rank() != 0) set_log_level(LogLevel::kWarn);
  SC_RETURN_IF_ERROR(check_grad_accum_flag(run.options, request.overrides, request.resume, comm->size()));
  Trainer trainer(run.options, run.config, std::move(comm), request.overwrite);
  auto result = [&]() -> Result<TrainSummary> {
    SC_RETURN_IF_ERROR(trainer.setup());
    if (run.checkpoint) SC_RETURN_IF_ERROR(trainer.resume_from(*run.checkpoint, *run.state));
    return trainer.run();
  }();
  // One rank's error ends the whole job with that rank's message, instead of
  // leaving the others waiting in a collective.
  if (!result.ok() && comm_view->size() > 1) (void)comm_view->abort_job(result.status().message());
  return result;
}

}  // namespace sc
