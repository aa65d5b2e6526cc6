#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/arena.h"
#include "core/fault_injection.h"
#include "core/file_util.h"
#include "core/human_format.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "data/loader.h"
#include "dist/communicator.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/peak.h"
#include "launch/heartbeat.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "model/weights_io.h"
#include "train/adamw.h"
#include "train/background_task.h"
#include "train/checkpoint_dir.h"
#include "train/data_parallel.h"
#include "train/loss_guard.h"
#include "train/loss_plot.h"
#include "train/optimizer_shards.h"
#include "train/lr_schedule.h"
#include "train/router_health.h"
#include "train/train_options.h"

namespace sc {
namespace fs = std::filesystem;

namespace {

// Options that must not change across a resume, or the continued run would
// not be the run that was checkpointed.
// (The batch is fixed as global_batch: a resume on another number of ranks
// derives its own grad_accum from it.)
constexpr const char* kFixedOnResume[] = {"global_batch", "seq_len", "seed", "data_dir"};

// The ranks that wrote a checkpoint's trainer_state.json. Checkpoints written
// before sharding have the count in their data cursor only.
int saved_world_size(const nlohmann::json& state) {
  return state.value("world_size", state.value("data_cursor", nlohmann::json::object()).value("world_size", 1));
}

// No collective waits longer than this: a rank that died or hangs turns into
// an error on the others instead of a job that never ends.
constexpr CollectiveTimeout kCollectiveTimeout{std::chrono::minutes(10)};

struct Clock {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
};

// One rank's figures of a step, exchanged with the gradient norm, and their
// combination over ranks. Summed in global micro-batch order (rank by rank,
// micro-batch by micro-batch), so the step's loss is the same double on any
// number of ranks.
struct StepFigures {
  std::vector<double> loss, aux, z;  // per micro-batch of this rank
  bool time_up = false;              // this rank's clock passed --time-limit
  // This rank's part of the checkpoint in flight.
  enum class Writer { kBusy, kWritten, kFailed } checkpoint = Writer::kBusy;
  int64_t dropped = 0;               // MoE assignments over capacity
  std::vector<int64_t> routed;       // [layer · experts + expert]
  double gather_wait_s = 0;          // waited in forward for the parameters (not exchanged)

  std::vector<double> pack() const {
    std::vector<double> out;
    for (size_t i = 0; i < loss.size(); ++i) out.insert(out.end(), {loss[i], aux[i], z[i]});
    out.insert(out.end(), {time_up ? 1.0 : 0.0, static_cast<double>(static_cast<int>(checkpoint)),
                           static_cast<double>(dropped)});
    out.insert(out.end(), routed.begin(), routed.end());
    return out;
  }
};

struct GlobalFigures {
  double loss = 0, aux = 0, z = 0;  // means over the global batch's micro-batches
  bool time_up = false;             // on any rank: all stop together
  bool checkpoint_files_written = true;  // on every rank: the checkpoint can be committed
  int checkpoint_failed_rank = -1;       // a rank whose writer failed (then nobody commits)
  int64_t dropped = 0;
  std::vector<std::vector<int64_t>> expert_tokens;  // [layer][expert]

  static GlobalFigures combine(const std::vector<std::vector<double>>& by_rank, size_t micro_batches,
                               size_t layers, size_t experts) {
    GlobalFigures g;
    g.expert_tokens.assign(layers, std::vector<int64_t>(experts, 0));
    for (const std::vector<double>& r : by_rank) {
      for (size_t m = 0; m < micro_batches; ++m) {
        g.loss += r[3 * m];
        g.aux += r[3 * m + 1];
        g.z += r[3 * m + 2];
      }
      const size_t tail = 3 * micro_batches;
      g.time_up = g.time_up || r[tail] > 0;
      const auto writer = static_cast<StepFigures::Writer>(static_cast<int>(r[tail + 1]));
      g.checkpoint_files_written = g.checkpoint_files_written && writer == StepFigures::Writer::kWritten;
      if (writer == StepFigures::Writer::kFailed && g.checkpoint_failed_rank < 0) {
        g.checkpoint_failed_rank = static_cast<int>(&r - by_rank.data());
      }
      g.dropped += static_cast<int64_t>(r[tail + 2]);
      for (size_t i = 0; i < layers * experts; ++i) g.expert_tokens[i / experts][i % experts] += static_cast<int64_t>(r[tail + 3 + i]);
    }
    const double n = static_cast<double>(micro_batches * by_rank.size());
    g.loss /= n;
    g.aux /= n;
    g.z /= n;
    return g;
  }
};

class Trainer {
 public:
  Trainer(TrainOptions options, ModelConfig config, std::unique_ptr<Communicator> comm)
      : o_(std::move(options)), config_(std::move(config)), comm_(std::move(comm)) {}
  // The checkpoint writer reads the staging buffers and the model's layout.
  ~Trainer() { (void)writer_.wait(); }

  Status setup();
  Status resume_from(const CheckpointInfo& checkpoint);
  Result<TrainSummary> run();

 private:
  Result<double> evaluate();
  // Forward and backward of this rank's micro-batches of the step; the last
  // backward starts the buckets' reduce-scatters (finish_reduce completes them).
  Result<StepFigures> compute_gradients();
  // Asynchronous checkpoints (docs/checkpoint_format.md): start_checkpoint
  // stages this rank's state and hands it to a background writer (returns the
  // stall, seconds the step loop waited); commit_checkpoint_now runs once
  // every rank has reported its files written in a step's exchange, or
  // flush_checkpoint waits for that (a barrier; every rank calls it).
  Result<double> start_checkpoint();
  Status commit_checkpoint_now();
  Status flush_checkpoint();
  // Waits for this rank's writer (once per checkpoint); its Status.
  Status collect_writer();
  std::string checkpoints_dir() const { return o_.out_dir + "/checkpoints"; }
  // Back to the newest valid checkpoint, keeping the data cursor (so the
  // batches since then, the offending ones included, are not seen again).
  Status rollback(const std::string& why);
  void log_event(nlohmann::json event);
  Status write_metrics_line(const nlohmann::json& line);
  Status write_loss_plot();

  TrainOptions o_;
  ModelConfig config_;
  // Data parallelism (train/data_parallel.h): every rank holds the whole
  // model, runs its micro-batches of the global batch, and owns the
  // optimizer state of one shard of every gradient bucket (ZeRO-1). Rank 0
  // alone prints and writes, except each rank's optimizer shard.
  std::unique_ptr<Communicator> comm_;
  bool root() const { return comm_->rank() == 0; }
  int world() const { return comm_->size(); }
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
  std::string last_checkpoint_;
  BackgroundTask writer_;
  bool writer_collected_ = true;
  Status writer_status_;
  std::vector<float> staged_params_, staged_m_, staged_v_;
  int64_t writing_step_ = -1;     // checkpoint in flight (files being written or written, not committed)
  Clock writing_clock_;
  double writing_stall_s_ = 0;
  double last_commit_s_ = -1;  // set by a commit, reported in that step's metrics
  LossGuard guard_;
  // Rollbacks since the run last got past the step where it rolled back.
  int64_t rolled_back_from_ = -1, rollbacks_in_a_row_ = 0;
  FaultInjector faults_;
  HeartbeatWriter heartbeat_;
  std::optional<RouterHealth> router_health_;
  static constexpr int64_t kRouterCollapseSteps = 50;
  double elapsed_before_s_ = 0;  // training time of earlier (resumed) segments
  Clock run_clock_;              // this segment's training time
};

Status Trainer::setup() {
  SC_RETURN_IF_ERROR(o_.validate());
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
  const size_t buckets = plan.buckets().size();
  SC_ASSIGN_OR_RETURN(GradientSync sync, GradientSync::create(*comm_, *pool_, std::move(plan), model_->grads(),
                                                              model_->params(), static_cast<int>(o_.grad_accum)));
  sync_.emplace(std::move(sync));
  schedule_ = {o_.lr, o_.min_lr, o_.warmup_steps(), o_.steps};
  router_health_.emplace(model_->moe_stats().size(), std::max<int64_t>(config_.num_experts, 0), kRouterCollapseSteps);
  inputs_.resize(static_cast<size_t>(o_.batch_size * o_.seq_len));
  targets_.resize(inputs_.size());

  const ParameterCounts counts = count_parameters(config_);
  flops_per_token_ = model_flops_per_token(config_, o_.seq_len);
  peak_gflops_ = matmul_peak_gflops(*pool_);
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
             "overlap backward, parameter all-gathers the next forward", world(), comm_->backend_name(), buckets,
             o_.bucket_mb, model_->buffer_floats());
  }
  if (root()) {
    SC_RETURN_IF_ERROR(ensure_writable_directory(o_.out_dir));
    // Temporary checkpoint directories of a crashed earlier attempt: never
    // committed, never read; gone before any rank writes a new one.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(checkpoints_dir(), ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with(".step_") && name.ends_with(".tmp")) fs::remove_all(entry.path(), ec);
    }
  }
  // No rank touches the run directory before rank 0 has made it.
  return comm_->barrier(kCollectiveTimeout);
}

Status Trainer::resume_from(const CheckpointInfo& checkpoint) {
  const std::string dir = checkpoint.path;
  SC_RETURN_IF_ERROR(load_weights(dir + "/model.safetensors", model_->layout(), model_->params()));
  SC_RETURN_IF_ERROR(load_optimizer_shards(dir, *adamw_, model_->num_floats()));
  SC_ASSIGN_OR_RETURN(std::string state_text, read_file(dir + "/trainer_state.json"));
  nlohmann::json state = nlohmann::json::parse(state_text, nullptr, false);
  if (state.is_discarded()) return Status::corruption("{}/trainer_state.json: not valid JSON", dir);
  SC_ASSIGN_OR_RETURN(LoaderCursor cursor, LoaderCursor::from_json(state.value("data_cursor", nlohmann::json())));
  SC_RETURN_IF_ERROR(train_data_->restore(cursor).with_context(dir));
  step_ = state.value("step", int64_t{0});
  tokens_seen_ = state.value("tokens_seen", 0.0);
  elapsed_before_s_ = state.value("elapsed_s", 0.0);
  guard_.restore(state.value("loss_guard", nlohmann::json()));
  train_history_.clear();
  val_history_.clear();
  // Earlier history: metrics.jsonl up to this step (later lines belong to the lost segment).
  std::ifstream metrics(o_.out_dir + "/metrics.jsonl");
  std::string line, kept;
  while (std::getline(metrics, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step") || j["step"].get<int64_t>() > step_) continue;
    kept += line + "\n";
    if (j.contains("loss")) train_history_.push_back({j["step"].get<double>(), j["loss"].get<double>()});
    if (j.contains("val_loss")) val_history_.push_back({j["step"].get<double>(), j["val_loss"].get<double>()});
  }
  if (root()) SC_RETURN_IF_ERROR(write_file_atomic(o_.out_dir + "/metrics.jsonl", kept));
  last_checkpoint_ = dir;
  heartbeat_.beat(step_, HeartbeatPhase::kSetup);
  const int saved_world = saved_world_size(state);
  log_info("resumed from {} at step {}{}", dir, step_,
           saved_world != world() ? fmt::format(" (written on {} rank{}, resharded to {})", saved_world,
                                                saved_world > 1 ? "s" : "", world())
                                  : "");
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
  const Clock stall;
  SC_RETURN_IF_ERROR(sync_->finish_gather_params(kCollectiveTimeout));  // the parameters it stages
  SC_RETURN_IF_ERROR(flush_checkpoint());  // one checkpoint in flight at most
  heartbeat_.beat(step_, HeartbeatPhase::kCheckpoint);
  const std::string dir = checkpoint_temp_dir(checkpoints_dir(), step_);
  std::error_code ec;
  fs::create_directories(dir, ec);  // every rank: whoever comes first makes it
  if (ec) return Status::io_error("{}: cannot create: {}", dir, ec.message());
  // Stage: the step loop may change the live buffers as soon as we return.
  staged_m_.assign(adamw_->m(), adamw_->m() + adamw_->size());
  staged_v_.assign(adamw_->v(), adamw_->v() + adamw_->size());
  std::string state_text;
  if (root()) {
    staged_params_.assign(model_->params(), model_->params() + model_->num_floats());
    nlohmann::json state = {{"step", step_},
                            {"tokens_seen", tokens_seen_},
                            {"elapsed_s", elapsed_before_s_ + run_clock_.seconds()},
                            {"world_size", world()},
                            {"options", o_.to_json()},
                            {"rng", {{"kind", "counter"}, {"seed", o_.seed}}},
                            {"data_cursor", train_data_->cursor().to_json()},
                            {"loss_guard", guard_.state()}};
    state_text = state.dump(2) + "\n";
  }
  const int64_t step = step_;
  writer_.start([this, dir, step, state_text = std::move(state_text)]() -> Status {
    SC_RETURN_IF_ERROR(save_optimizer_shard(dir, comm_->rank(), world(), adamw_->segments(), staged_m_, staged_v_,
                                            model_->num_floats(), step));
    faults_.in_checkpoint_write(step);
    if (!root()) return Status();
    SC_RETURN_IF_ERROR(save_weights(dir + "/model.safetensors", model_->layout(), staged_params_.data()));
    SC_RETURN_IF_ERROR(write_file_atomic(dir + "/config.json", config_.to_json().dump(2) + "\n"));
    const std::string tokenizer = o_.data_dir + "/tokenizer.model";
    if (fs::exists(tokenizer)) {
      SC_ASSIGN_OR_RETURN(std::string bytes, read_file(tokenizer));
      SC_RETURN_IF_ERROR(write_file_atomic(dir + "/tokenizer.model", bytes));
    }
    return write_file_atomic(dir + "/trainer_state.json", state_text);
  });
  writing_step_ = step_;
  writer_collected_ = false;
  writing_clock_ = Clock();
  writing_stall_s_ = stall.seconds();
  return writing_stall_s_;
}

Status Trainer::collect_writer() {
  if (!writer_collected_) {
    writer_status_ = writer_.wait().with_context(
        fmt::format("rank {}: writing checkpoint {}", comm_->rank(), checkpoint_dir_name(writing_step_)));
    writer_collected_ = true;
  }
  return writer_status_;
}

Status Trainer::commit_checkpoint_now() {
  // Every rank's files of writing_step_ are on disk (the caller knows).
  SC_RETURN_IF_ERROR(collect_writer());
  const Clock commit;
  if (root()) {
    // Checksums every file into the manifest (reading them back from the page
    // cache): part of the step loop's stall, reported apart from the staging.
    SC_RETURN_IF_ERROR(finish_checkpoint(checkpoints_dir(), writing_step_, static_cast<int>(o_.keep_checkpoints)));
    log_event({{"event", "checkpoint"},
               {"step", writing_step_},
               {"stall_s", writing_stall_s_ + commit.seconds()},
               {"commit_s", commit.seconds()},
               {"committed_after_s", writing_clock_.seconds()}});
  }
  last_checkpoint_ = checkpoints_dir() + "/" + checkpoint_dir_name(writing_step_);
  last_commit_s_ = commit.seconds();
  log_info("checkpoint {} committed {:.2f} s after its step; the step loop stalled {:.0f} ms staging it and {:.0f} ms "
           "committing it", last_checkpoint_, writing_clock_.seconds(), 1e3 * writing_stall_s_, 1e3 * last_commit_s_);
  writing_step_ = -1;
  return Status();
}

Status Trainer::flush_checkpoint() {
  if (writing_step_ < 0) return Status();
  SC_RETURN_IF_ERROR(collect_writer());
  SC_RETURN_IF_ERROR(comm_->barrier(kCollectiveTimeout));  // every rank's part is on disk
  return commit_checkpoint_now();
}

Status Trainer::rollback(const std::string& why) {
  SC_RETURN_IF_ERROR(sync_->finish_gather_params(kCollectiveTimeout));  // before loading over the parameters
  SC_RETURN_IF_ERROR(flush_checkpoint());
  // Rank 0 picks the checkpoint (after its own commit and pruning) and every
  // rank loads that one: ranks scanning the directory themselves could see
  // it before and after rank 0's rename and load different steps.
  int64_t target = -1;
  if (root()) {
    std::vector<std::string> skipped;
    auto found = find_latest_valid_checkpoint(checkpoints_dir(), &skipped);
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
  const CheckpointInfo checkpoint{checkpoints_dir() + "/" + checkpoint_dir_name(target), target};
  const LoaderCursor past_the_bad_batches = train_data_->cursor();
  const int64_t from = step_;
  SC_RETURN_IF_ERROR(resume_from(checkpoint));
  SC_RETURN_IF_ERROR(train_data_->restore(past_the_bad_batches));
  // Training time of the kept steps: the checkpoint's, plus what follows.
  elapsed_before_s_ -= run_clock_.seconds();
  if (root()) {
    log_warn("step {}: {}; rolled back to {} (step {}) and skipping the batches since", from + 1, why,
             checkpoint.path, target);
  }
  log_event({{"event", "rollback"}, {"step", from + 1}, {"to_step", target}, {"reason", why}});
  return Status();
}

void Trainer::log_event(nlohmann::json event) {
  if (!root()) return;
  event["time"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  event["source"] = "trainer";
  std::ofstream out(o_.out_dir + "/events.jsonl", std::ios::app);
  out << event.dump() << "\n";
}

Status Trainer::write_metrics_line(const nlohmann::json& line) {
  if (!root()) return Status();
  std::ofstream out(o_.out_dir + "/metrics.jsonl", std::ios::app);
  out << line.dump() << "\n";
  if (!out) return Status::io_error("{}/metrics.jsonl: write failed", o_.out_dir);
  return Status();
}

Status Trainer::write_loss_plot() {
  if (!root()) return Status();
  return write_file_atomic(o_.out_dir + "/loss.svg",
                           render_loss_svg(train_history_, val_history_, fmt::format("{} on {}", o_.config, o_.data_dir)));
}

Result<StepFigures> Trainer::compute_gradients() {
  StepFigures mine;
  const size_t layers = model_->moe_stats().size();
  const size_t experts = static_cast<size_t>(std::max<int64_t>(config_.num_experts, 0));
  mine.routed.assign(layers * experts, 0);
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
      const Clock wait;
      Status status = sync_->params_needed(end, kCollectiveTimeout);
      mine.gather_wait_s += wait.seconds();
      return status;
    }));
    mine.loss.push_back(sums.loss_sum / static_cast<double>(sums.count));
    mine.aux.push_back(model_->aux_loss());
    mine.z.push_back(model_->z_loss());
    for (size_t l = 0; l < layers; ++l) {
      const MoeStats& stats = model_->moe_stats()[l];
      for (size_t e = 0; e < stats.routed.size(); ++e) mine.routed[l * experts + e] += stats.routed[e];
      mine.dropped += stats.dropped;
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

Result<TrainSummary> Trainer::run() {
  if (step_ == 0 && root()) SC_RETURN_IF_ERROR(write_file_atomic(o_.out_dir + "/metrics.jsonl", ""));
  const int64_t last_step = o_.stop_at_step > 0 ? o_.stop_at_step : o_.steps;
  const double tokens_per_step = static_cast<double>(o_.global_batch * o_.seq_len);
  run_clock_ = Clock();
  const Clock& clock = run_clock_;
  ProgressLine progress(0.2);
  double last_plain_line_s = -1e9, window_start_s = 0, window_tokens = 0, tokens_per_s = 0, mfu = 0;
  double last_val = val_history_.empty() ? -1.0 : val_history_.back().loss;
  bool stopped_by_time = false;
  const int64_t first_step = step_;

  const size_t moe_layers = model_->moe_stats().size();
  const size_t experts = static_cast<size_t>(std::max<int64_t>(config_.num_experts, 0));
  while (step_ < last_step) {
    faults_.at_step_start(step_ + 1);
    const uint64_t bytes_before = comm_->bytes_sent();
    SC_ASSIGN_OR_RETURN(StepFigures mine, compute_gradients());
    if (faults_.poison_now(step_ + 1)) mine.loss[0] = std::numeric_limits<double>::quiet_NaN();
    // Communication that backward did not hide: the rest of the
    // reduce-scatters, the norm/statistics exchange, the parameter all-gather.
    heartbeat_.beat(step_, HeartbeatPhase::kCollective);
    double comm_wait_s = clock.seconds();
    SC_RETURN_IF_ERROR(sync_->finish_reduce(kCollectiveTimeout));
    // The time limit is decided together: one rank stopping alone would leave
    // the others waiting in the next collective.
    mine.time_up = o_.time_limit_min > 0 && clock.seconds() >= o_.time_limit_min * 60.0;
    if (writing_step_ >= 0 && writer_.finished()) {
      mine.checkpoint = collect_writer().ok() ? StepFigures::Writer::kWritten : StepFigures::Writer::kFailed;
    }
    SC_ASSIGN_OR_RETURN(GradientSync::Exchanged exchanged, sync_->exchange(mine.pack(), kCollectiveTimeout));
    comm_wait_s = clock.seconds() - comm_wait_s;
    const GlobalFigures step = GlobalFigures::combine(exchanged.by_rank, static_cast<size_t>(o_.grad_accum),
                                                      moe_layers, experts);
    const double loss = step.loss;
    const double grad_norm = std::sqrt(exchanged.sum_squares);
    const bool time_up = step.time_up;
    if (writing_step_ >= 0 && step.checkpoint_failed_rank >= 0) {
      // Nobody commits a checkpoint with a part missing; every rank stops.
      SC_RETURN_IF_ERROR(collect_writer());
      return Status::io_error("rank {} could not write its part of checkpoint {}", step.checkpoint_failed_rank,
                              checkpoint_dir_name(writing_step_));
    }
    if (writing_step_ >= 0 && step.checkpoint_files_written) SC_RETURN_IF_ERROR(commit_checkpoint_now());
    std::string why;
    const LossGuard::Verdict verdict = guard_.check(loss, grad_norm, &why);
    if (verdict != LossGuard::Verdict::kApply) {
      if (verdict == LossGuard::Verdict::kSkip) {
        // Every rank reached this verdict from the same numbers; one says so.
        if (root()) log_warn("step {}: {}; update skipped, the step is redone with the next batch", step_ + 1, why);
        log_event({{"event", "skipped_step"}, {"step", step_ + 1}, {"reason", why}});
      } else {
        SC_RETURN_IF_ERROR(rollback(why));
      }
      if (time_up) {
        // The promised checkpoint at the time limit (of the last applied step).
        SC_RETURN_IF_ERROR(start_checkpoint().status());
        SC_RETURN_IF_ERROR(flush_checkpoint());
        stopped_by_time = true;
        break;
      }
      continue;
    }
    const double lr = schedule_.at(step_);
    ++step_;
    if (step_ > rolled_back_from_) rollbacks_in_a_row_ = 0;
    adamw_->update(model_->params(), model_->grads(), lr, step_, *pool_, clip_coefficient(grad_norm, o_.grad_clip));
    // Finished by the next forward, layer by layer (or before anything else
    // touches the parameters).
    SC_RETURN_IF_ERROR(sync_->start_gather_params());
    comm_wait_s += mine.gather_wait_s;
    heartbeat_.beat(step_, HeartbeatPhase::kTrain);
    tokens_seen_ += tokens_per_step;
    window_tokens += tokens_per_step;

    const double now = clock.seconds();
    if (now - window_start_s >= 1.0 || step_ == first_step + 1 || step_ == last_step) {
      tokens_per_s = window_tokens / std::max(1e-9, now - window_start_s);
      mfu = tokens_per_s * static_cast<double>(flops_per_token_) / (peak_gflops_ * world() * 1e9);
      window_start_s = now;
      window_tokens = 0;
    }
    nlohmann::json metrics = {{"step", step_},       {"loss", loss},          {"lr", lr},
                              {"grad_norm", grad_norm}, {"tokens_per_s", tokens_per_s}, {"mfu", mfu},
                              {"tokens", tokens_seen_}, {"elapsed_s", elapsed_before_s_ + now}};
    if (last_commit_s_ >= 0) {
      metrics["checkpoint_commit_s"] = last_commit_s_;
      last_commit_s_ = -1;
    }
    if (world() > 1) {
      metrics["comm_bytes"] = comm_->bytes_sent() - bytes_before;  // sent by this rank (rank 0)
      metrics["comm_wait_s"] = comm_wait_s;
    }
    train_history_.push_back({static_cast<double>(step_), loss});
    std::string balance_text;
    if (moe_layers > 0) {
      const double balance = RouterHealth::balance(step.expert_tokens);
      for (const std::string& warning : router_health_->update(step.expert_tokens)) log_warn("{}", warning);
      metrics["aux_loss"] = step.aux;
      metrics["z_loss"] = step.z;
      metrics["expert_tokens"] = step.expert_tokens;
      metrics["expert_balance"] = balance;
      if (config_.capacity_factor > 0) metrics["dropped_assignments"] = step.dropped;
      balance_text = fmt::format(" | balance {:.2f}", balance);
    }

    const bool final_step = step_ == last_step || time_up;
    if ((o_.eval_every > 0 && step_ % o_.eval_every == 0) || final_step) {
      heartbeat_.beat(step_, HeartbeatPhase::kEval);
      SC_ASSIGN_OR_RETURN(last_val, evaluate());
      if (last_val >= 0) {
        metrics["val_loss"] = last_val;
        val_history_.push_back({static_cast<double>(step_), last_val});
      }
      SC_RETURN_IF_ERROR(write_loss_plot());
    }
    if ((o_.checkpoint_every > 0 && step_ % o_.checkpoint_every == 0) || final_step) {
      SC_ASSIGN_OR_RETURN(const double stall_s, start_checkpoint());
      if (final_step || o_.async_checkpoint == 0) SC_RETURN_IF_ERROR(flush_checkpoint());
      metrics["checkpoint_stall_s"] = stall_s;
    }
    SC_RETURN_IF_ERROR(write_metrics_line(metrics));

    const double eta = (last_step - step_) * (now / static_cast<double>(std::max<int64_t>(1, step_ - first_step)));
    const std::string line = fmt::format(
        "step {:>{}}/{} | loss {:.4f} | val {} | lr {:.2e}{} | {} tok/s | MFU {:.1f}% | ETA {}", step_,
        std::to_string(o_.steps).size(), o_.steps, loss, last_val >= 0 ? fmt::format("{:.4f}", last_val) : "  -   ",
        lr, balance_text, human_count(tokens_per_s), 100.0 * mfu, human_duration(eta));
    if (!root()) {
      // Only rank 0 reports.
    } else if (stderr_is_terminal()) {
      if (progress.due() || final_step || metrics.contains("val_loss")) progress.show(line);
    } else if (now - last_plain_line_s >= 10.0 || final_step || metrics.contains("val_loss")) {
      std::fprintf(stderr, "%s\n", line.c_str());
      last_plain_line_s = now;
    }

    if (time_up && step_ < last_step) {
      stopped_by_time = true;
      break;
    }
  }
  SC_RETURN_IF_ERROR(sync_->finish_gather_params(kCollectiveTimeout));
  SC_RETURN_IF_ERROR(flush_checkpoint());
  heartbeat_.beat(step_, HeartbeatPhase::kDone);
  progress.finish();
  if (stopped_by_time) log_info("time limit of {} min reached at step {}", o_.time_limit_min, step_);

  TrainSummary summary;
  summary.last_step = step_;
  const size_t tail = std::min<size_t>(train_history_.size(), 20);
  for (size_t i = train_history_.size() - tail; i < train_history_.size(); ++i) summary.train_loss += train_history_[i].loss;
  summary.train_loss /= std::max<size_t>(1, tail);
  summary.val_loss = last_val;
  summary.tokens_per_s = (tokens_seen_ - first_step * tokens_per_step) / std::max(1e-9, clock.seconds());
  summary.mfu = summary.tokens_per_s * static_cast<double>(flops_per_token_) / (peak_gflops_ * world() * 1e9);
  summary.checkpoint = last_checkpoint_;
  summary.reporting_rank = root();
  return summary;
}

}  // namespace

Result<TrainSummary> run_training(const TrainRequest& request) {
  TrainOptions options;
  SC_RETURN_IF_ERROR(options.apply_json(request.overrides, "command line"));
  ModelConfig config;
  std::optional<CheckpointInfo> checkpoint;
  if (request.resume) {
    if (options.out_dir.empty()) return Status::invalid("--resume needs --out, the run directory to continue");
    std::vector<std::string> skipped;
    auto found = find_latest_valid_checkpoint(options.out_dir + "/checkpoints", &skipped);
    for (const std::string& why : skipped) log_warn("skipping checkpoint: {}", why);
    if (!found.ok()) return found.status().with_context("--resume");
    checkpoint = *found;
    SC_ASSIGN_OR_RETURN(std::string state_text, read_file(checkpoint->path + "/trainer_state.json"));
    nlohmann::json state = nlohmann::json::parse(state_text, nullptr, false);
    if (state.is_discarded() || !state.contains("options")) {
      return Status::corruption("{}/trainer_state.json: not valid JSON with 'options'", checkpoint->path);
    }
    TrainOptions saved;
    SC_RETURN_IF_ERROR(saved.apply_json(state["options"], checkpoint->path + "/trainer_state.json"));
    if (!state["options"].contains("global_batch")) {
      // Written before global_batch existed: the batch it trained with.
      saved.global_batch = saved.batch_size * saved.grad_accum * saved_world_size(state);
      state["options"]["global_batch"] = saved.global_batch;
    }
    for (const char* key : kFixedOnResume) {
      if (request.overrides.contains(key) && request.overrides[key] != state["options"][key]) {
        return Status::invalid("--resume: '{}' is {} in the checkpoint and {} on the command line; a resumed run "
                               "must keep it", key, state["options"][key].dump(), request.overrides[key].dump());
      }
    }
    options = saved;
    nlohmann::json overrides = request.overrides;
    if (!overrides.contains("stop_at_step")) overrides["stop_at_step"] = 0;  // an early stop is not inherited
    SC_RETURN_IF_ERROR(options.apply_json(overrides, "command line"));
    SC_ASSIGN_OR_RETURN(config, ModelConfig::load(checkpoint->path + "/config.json"));
  } else {
    SC_ASSIGN_OR_RETURN(config, ModelConfig::resolve(options.config));
    // Precedence: defaults < config.json "training" < flags.
    TrainOptions merged;
    SC_RETURN_IF_ERROR(merged.apply_json(config.training, options.config + " 'training'"));
    SC_RETURN_IF_ERROR(merged.apply_json(request.overrides, "command line"));
    options = merged;
  }
  if (request.dry_run) {
    std::printf("%s", format_counts_report(config, options.batch_size, options.seq_len).c_str());
    return TrainSummary{};
  }
  if (!request.resume && fs::exists(options.out_dir + "/checkpoints")) {
    std::vector<std::string> ignored;
    if (find_latest_valid_checkpoint(options.out_dir + "/checkpoints", &ignored).ok()) {
      return Status::invalid("{} already holds checkpoints: pass --resume to continue that run, or choose another --out",
                             options.out_dir);
    }
  }
  SC_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, make_communicator());
  Communicator* comm_view = comm.get();
  if (comm->rank() != 0) set_log_level(LogLevel::kWarn);
  if (request.overrides.contains("grad_accum")) {
    // A fixed global batch decides grad_accum; an explicit one must agree.
    TrainOptions resolved = options;
    SC_RETURN_IF_ERROR(resolved.resolve_batch(comm->size()));
    if (resolved.grad_accum != options.grad_accum) {
      return Status::invalid("--grad-accum {} conflicts with the global batch of {} sequences{}: batch size {} on {} "
                             "ranks needs --grad-accum {}; give only one of them",
                             options.grad_accum, options.global_batch, request.resume ? " of the resumed run" : "",
                             options.batch_size, comm->size(), resolved.grad_accum);
    }
  }
  Trainer trainer(options, config, std::move(comm));
  auto result = [&]() -> Result<TrainSummary> {
    SC_RETURN_IF_ERROR(trainer.setup());
    if (checkpoint) SC_RETURN_IF_ERROR(trainer.resume_from(*checkpoint));
    return trainer.run();
  }();
  // One rank's error ends the whole job with that rank's message, instead of
  // leaving the others waiting in a collective.
  if (!result.ok() && comm_view->size() > 1) (void)comm_view->abort_job(result.status().message());
  return result;
}

}  // namespace sc
