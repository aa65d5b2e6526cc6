#include "dist/mpi_communicator.h"

// The C API only: OpenMPI's deprecated C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

namespace sc {
namespace {

// Live MpiCommunicators, and whether we initialized MPI (then the last one
// to die finalizes it). Only the main thread creates communicators.
int g_live_communicators = 0;
bool g_we_initialized_mpi = false;
bool g_any_timed_out = false;

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return fmt::format("MPI error {}", code);
  return std::string(text, static_cast<size_t>(len));
}

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0';
}

Status check_count(const char* what, size_t n) {
  if (n > static_cast<size_t>(INT_MAX)) {
    return Status::invalid("{}: {} elements exceed MPI's int count; split it into buckets", what, n);
  }
  return Status::ok_status();
}

// One in-flight collective: the current MPI request, and what to do when it
// completes (a local sum, a copy, or starting the next phase).
struct MpiPendingState final : PendingOpState {
  const MpiCommunicator::Impl* owner = nullptr;
  MPI_Request request = MPI_REQUEST_NULL;
  std::function<Status()> then;
  std::vector<int> counts, offsets, recv_counts, recv_offsets;  // must outlive the request
  std::unique_ptr<float[]> scratch;
  size_t scratch_capacity = 0;
};

}  // namespace

struct MpiCommunicator::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  std::string broken_reason;  // set by a timeout: the communicator is unusable
  // Scratch buffers of finished deterministic ops, reused so a step loop
  // allocates nothing once warm.
  std::vector<std::pair<std::unique_ptr<float[]>, size_t>> free_scratch;

  std::string who() const { return fmt::format("rank {} of {}", rank, size); }

  Status mpi_status(int code, const std::string& what) const {
    if (code == MPI_SUCCESS) return Status::ok_status();
    return Status::internal("{}: {} failed: {}", who(), what, mpi_error_text(code));
  }

  Status usable() const {
    if (broken_reason.empty()) return Status::ok_status();
    return Status::internal("{}: communicator unusable after an earlier failure ({}); call abort_job",
                            who(), broken_reason);
  }

  void take_scratch(MpiPendingState& s, size_t n) {
    for (size_t i = 0; i < free_scratch.size(); ++i) {
      if (free_scratch[i].second >= n) {
        s.scratch = std::move(free_scratch[i].first);
        s.scratch_capacity = free_scratch[i].second;
        free_scratch.erase(free_scratch.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
    }
    s.scratch = std::make_unique<float[]>(n);
    s.scratch_capacity = n;
  }

  void give_back_scratch(MpiPendingState& s) {
    if (s.scratch) free_scratch.emplace_back(std::move(s.scratch), s.scratch_capacity);
  }

  // Runs the completion steps of `s` for as long as its requests are done;
  // true when the whole collective has completed.
  Result<bool> progress(MpiPendingState& s, const std::string& what) {
    for (;;) {
      int done = 0;
      SC_RETURN_IF_ERROR(mpi_status(MPI_Test(&s.request, &done, MPI_STATUS_IGNORE), what));
      if (!done) return false;
      if (!s.then) return true;
      auto next = std::move(s.then);
      s.then = nullptr;
      SC_RETURN_IF_ERROR(next());
    }
  }
};

// Sum of `rows` rows of `count` floats into `out`, in a fixed pairwise tree
// over rank order: level by level, row i += row i+stride for stride = 1, 2,
// 4, ... (4 ranks: (r0 + r1) + (r2 + r3)). A tree, not a left fold, so that a
// trainer summing its own micro-batches pairwise gets the same bits on 1, 2 or
// 4 ranks (docs/communicator.md). Overwrites `rows`. The build has no
// -ffast-math, so the compiler keeps this order.
static void sum_rows_pairwise(float* rows, int row_count, size_t count, float* out) {
  if (count == 0) return;
  for (int stride = 1; stride < row_count; stride *= 2) {
    for (int i = 0; i + stride < row_count; i += 2 * stride) {
      float* into = rows + static_cast<size_t>(i) * count;
      const float* from = rows + static_cast<size_t>(i + stride) * count;
      for (size_t k = 0; k < count; ++k) into[k] += from[k];
    }
  }
  std::memcpy(out, rows, count * sizeof(float));
}

bool mpi_already_initialized() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

bool launched_by_mpi_launcher() {
  // OpenMPI's mpirun, PMIx (OpenMPI, srun --mpi=pmix), PMI-1/2 (hydra, srun --mpi=pmi2), any srun step.
  return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMIX_RANK") || env_set("PMI_RANK") ||
         env_set("PMI_SIZE") || env_set("SLURM_STEP_NUM_TASKS");
}

Result<std::unique_ptr<MpiCommunicator>> MpiCommunicator::create(bool deterministic) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized) return Status::internal("MPI was already finalized in this process; it cannot start again");
  int provided = 0;
  if (!initialized) {
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return Status::internal("MPI_Init_thread failed: {}", mpi_error_text(rc));
    g_we_initialized_mpi = true;
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_FUNNELED) {
    return Status::internal("MPI provides thread level {}, supercluster needs MPI_THREAD_FUNNELED",
                            provided);
  }
  auto impl = std::make_unique<Impl>();
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &impl->comm);
  if (rc != MPI_SUCCESS) return Status::internal("MPI_Comm_dup failed: {}", mpi_error_text(rc));
  MPI_Comm_set_errhandler(impl->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(impl->comm, &impl->rank);
  MPI_Comm_size(impl->comm, &impl->size);
  ++g_live_communicators;
  const int rank = impl->rank, size = impl->size;
  std::unique_ptr<MpiCommunicator> comm(new MpiCommunicator(std::move(impl), rank, size, deterministic));

  // srun without an MPI plugin starts N unconnected singletons: say so rather
  // than train N copies of the same model.
  if (const char* tasks = std::getenv("SLURM_STEP_NUM_TASKS"); tasks && size == 1 && std::atoi(tasks) > 1) {
    return Status::invalid(
        "srun started {} tasks but MPI sees a world of 1: launch with `srun --mpi=pmix` (or pmi2) "
        "so the ranks find each other",
        tasks);
  }
  return comm;
}

MpiCommunicator::MpiCommunicator(std::unique_ptr<Impl> impl, int rank, int size, bool deterministic)
    : impl_(std::move(impl)), rank_(rank), size_(size), deterministic_(deterministic) {}

MpiCommunicator::~MpiCommunicator() {
  // After a timeout a collective is still pending on some rank: freeing the
  // communicator or finalizing could block, so leave both to process exit.
  if (!impl_->broken_reason.empty()) g_any_timed_out = true;
  if (!g_any_timed_out) MPI_Comm_free(&impl_->comm);
  if (--g_live_communicators == 0 && g_we_initialized_mpi && !g_any_timed_out) MPI_Finalize();
}

std::string MpiCommunicator::backend_name() const {
  return deterministic_ ? "mpi (deterministic)" : "mpi";
}

Result<PendingOp> MpiCommunicator::start_all_reduce(std::span<float> data) {
  Impl& m = *impl_;
  SC_RETURN_IF_ERROR(m.usable());
  std::string what = fmt::format("all_reduce of {} floats", data.size());
  SC_RETURN_IF_ERROR(check_count("all_reduce", data.size()));
  auto state = std::make_unique<MpiPendingState>();
  state->owner = &m;
  const int n = static_cast<int>(data.size());
  // Every shard but this rank's goes out, then this rank's shard to the
  // others: 2(size-1)/size of the buffer, a ring's figure (counted the same
  // for MPI's own algorithm).
  {
    const size_t mine = shard_range(data.size(), rank_, size_).count();
    count_sent((data.size() - mine + mine * static_cast<size_t>(size_ - 1)) * sizeof(float));
  }
  if (!deterministic_) {
    SC_RETURN_IF_ERROR(m.mpi_status(
        MPI_Iallreduce(MPI_IN_PLACE, data.data(), n, MPI_FLOAT, MPI_SUM, m.comm, &state->request),
        what));
    return PendingOp(std::move(what), std::move(state));
  }
  // Gather-to-owner: rank j receives every rank's copy of its shard, sums them
  // in the fixed pairwise order, then every shard is all-gathered back in place.
  MpiPendingState& s = *state;
  s.counts.resize(size_);
  s.offsets.resize(size_);
  for (int j = 0; j < size_; ++j) {
    ShardRange r = shard_range(data.size(), j, size_);
    s.counts[j] = static_cast<int>(r.count());
    s.offsets[j] = static_cast<int>(r.begin);
  }
  const ShardRange mine = shard_range(data.size(), rank_, size_);
  const int mine_count = static_cast<int>(mine.count());
  s.recv_counts.assign(size_, mine_count);
  s.recv_offsets.resize(size_);
  for (int i = 0; i < size_; ++i) s.recv_offsets[i] = i * mine_count;
  m.take_scratch(s, mine.count() * static_cast<size_t>(size_));
  SC_RETURN_IF_ERROR(m.mpi_status(
      MPI_Ialltoallv(data.data(), s.counts.data(), s.offsets.data(), MPI_FLOAT, s.scratch.get(),
                     s.recv_counts.data(), s.recv_offsets.data(), MPI_FLOAT, m.comm, &s.request),
      what));
  s.then = [&m, &s, data, mine, what, size = size_]() -> Status {
    sum_rows_pairwise(s.scratch.get(), size, mine.count(), data.data() + mine.begin);
    return m.mpi_status(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data.data(),
                                        s.counts.data(), s.offsets.data(), MPI_FLOAT, m.comm,
                                        &s.request),
                        what);
  };
  return PendingOp(std::move(what), std::move(state));
}

Result<PendingOp> MpiCommunicator::start_reduce_scatter(std::span<const float> input,
                                                        std::span<float> shard) {
  Impl& m = *impl_;
  SC_RETURN_IF_ERROR(m.usable());
  SC_RETURN_IF_ERROR(dist_checks::reduce_scatter_args(input, shard, rank_, size_));
  SC_RETURN_IF_ERROR(check_count("reduce_scatter", input.size()));
  std::string what = fmt::format("reduce_scatter of {} floats", input.size());
  auto state = std::make_unique<MpiPendingState>();
  MpiPendingState& s = *state;
  s.owner = &m;
  const int shard_count = static_cast<int>(shard.size());
  const bool in_place = dist_checks::overlaps(input, shard);
  count_sent(shard.size() * static_cast<size_t>(size_ - 1) * sizeof(float));
  if (!deterministic_) {
    float* out = shard.data();
    if (in_place) {  // MPI forbids aliased buffers: reduce into scratch, then copy
      m.take_scratch(s, shard.size());
      out = s.scratch.get();
      s.then = [&s, shard]() -> Status {
        std::memcpy(shard.data(), s.scratch.get(), shard.size_bytes());
        return Status::ok_status();
      };
    }
    SC_RETURN_IF_ERROR(m.mpi_status(MPI_Ireduce_scatter_block(input.data(), out, shard_count, MPI_FLOAT,
                                                              MPI_SUM, m.comm, &s.request),
                                    what));
    return PendingOp(std::move(what), std::move(state));
  }
  m.take_scratch(s, input.size());
  SC_RETURN_IF_ERROR(m.mpi_status(MPI_Ialltoall(input.data(), shard_count, MPI_FLOAT, s.scratch.get(),
                                                shard_count, MPI_FLOAT, m.comm, &s.request),
                                  what));
  s.then = [&s, shard, size = size_]() -> Status {
    sum_rows_pairwise(s.scratch.get(), size, shard.size(), shard.data());
    return Status::ok_status();
  };
  return PendingOp(std::move(what), std::move(state));
}

Result<PendingOp> MpiCommunicator::start_all_gather(std::span<const float> shard,
                                                    std::span<float> output) {
  Impl& m = *impl_;
  SC_RETURN_IF_ERROR(m.usable());
  SC_RETURN_IF_ERROR(dist_checks::all_gather_args(shard, output, rank_, size_));
  SC_RETURN_IF_ERROR(check_count("all_gather", output.size()));
  std::string what = fmt::format("all_gather of {} floats", output.size());
  auto state = std::make_unique<MpiPendingState>();
  state->owner = &m;
  const int shard_count = static_cast<int>(shard.size());
  count_sent(shard.size() * static_cast<size_t>(size_ - 1) * sizeof(float));
  int rc = dist_checks::overlaps(output, shard)
               ? MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, output.data(), shard_count,
                                MPI_FLOAT, m.comm, &state->request)
               : MPI_Iallgather(shard.data(), shard_count, MPI_FLOAT, output.data(), shard_count,
                                MPI_FLOAT, m.comm, &state->request);
  SC_RETURN_IF_ERROR(m.mpi_status(rc, what));
  return PendingOp(std::move(what), std::move(state));
}

Result<bool> MpiCommunicator::test(PendingOp& op) {
  Impl& m = *impl_;
  SC_RETURN_IF_ERROR(m.usable());
  if (!op.active()) return Status::invalid("test: the operation is not active (never started or already waited for)");
  auto* s = dynamic_cast<MpiPendingState*>(op.state());
  if (s == nullptr || s->owner != &m) {
    return Status::invalid("test: {} was started on another communicator", op.description());
  }
  SC_ASSIGN_OR_RETURN(bool done, m.progress(*s, op.description()));
  if (done) {
    m.give_back_scratch(*s);
    op.finish();
  }
  return done;
}

Status MpiCommunicator::wait(PendingOp& op, CollectiveTimeout timeout) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  for (int polls = 0;; ++polls) {
    SC_ASSIGN_OR_RETURN(bool done, test(op));
    if (done) return Status::ok_status();
    const auto now = Clock::now();
    if (now >= deadline) {
      impl_->broken_reason = fmt::format("{} timed out", op.description());
      return Status::timeout(
          "{}: {} timed out after {} ms (another rank did not join it, is stuck, or died)",
          impl_->who(), op.description(), timeout.count());
    }
    // Spin briefly (small collectives finish in microseconds), then back off
    // so a waiting rank does not starve a computing one on shared cores.
    if (now - start > std::chrono::milliseconds(2)) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    } else if (polls > 64) {
      std::this_thread::yield();
    }
  }
}

Status MpiCommunicator::run_blocking(Result<PendingOp> started, CollectiveTimeout timeout) {
  if (!started.ok()) return started.status();
  return wait(started.value(), timeout);
}

Status MpiCommunicator::all_reduce(std::span<float> data, CollectiveTimeout timeout) {
  return run_blocking(start_all_reduce(data), timeout);
}

Status MpiCommunicator::reduce_scatter(std::span<const float> input, std::span<float> shard,
                                       CollectiveTimeout timeout) {
  return run_blocking(start_reduce_scatter(input, shard), timeout);
}

Status MpiCommunicator::all_gather(std::span<const float> shard, std::span<float> output,
                                   CollectiveTimeout timeout) {
  return run_blocking(start_all_gather(shard, output), timeout);
}

Status MpiCommunicator::all_to_all_v(std::span<const float> send, std::span<const size_t> send_counts,
                                     std::span<const size_t> send_offsets, std::span<float> recv,
                                     std::span<const size_t> recv_counts,
                                     std::span<const size_t> recv_offsets, CollectiveTimeout timeout) {
  Impl& m = *impl_;
  SC_RETURN_IF_ERROR(m.usable());
  SC_RETURN_IF_ERROR(dist_checks::all_to_all_v_args(send.size(), send_counts, send_offsets,
                                                    recv.size(), recv_counts, recv_offsets, size_));
  std::string what = fmt::format("all_to_all_v of {} floats out, {} in", send.size(), recv.size());
  auto state = std::make_unique<MpiPendingState>();
  MpiPendingState& s = *state;
  s.owner = &m;
  s.counts.assign(send_counts.begin(), send_counts.end());
  s.offsets.assign(send_offsets.begin(), send_offsets.end());
  s.recv_counts.assign(recv_counts.begin(), recv_counts.end());
  s.recv_offsets.assign(recv_offsets.begin(), recv_offsets.end());
  for (int j = 0; j < size_; ++j) {
    if (j != rank_) count_sent(send_counts[static_cast<size_t>(j)] * sizeof(float));
  }
  SC_RETURN_IF_ERROR(m.mpi_status(
      MPI_Ialltoallv(send.data(), s.counts.data(), s.offsets.data(), MPI_FLOAT, recv.data(),
                     s.recv_counts.data(), s.recv_offsets.data(), MPI_FLOAT, m.comm, &s.request),
      what));
  return run_blocking(PendingOp(std::move(what), std::move(state)), timeout);
}

Status MpiCommunicator::broadcast(std::span<std::byte> data, int root, CollectiveTimeout timeout) {
  Impl& m = *impl_;
  SC_RETURN_IF_ERROR(m.usable());
  SC_RETURN_IF_ERROR(dist_checks::root_arg(root, size_));
  SC_RETURN_IF_ERROR(check_count("broadcast", data.size()));
  std::string what = fmt::format("broadcast of {} bytes from rank {}", data.size(), root);
  auto state = std::make_unique<MpiPendingState>();
  state->owner = &m;
  if (rank_ == root) count_sent(data.size() * static_cast<size_t>(size_ - 1));
  SC_RETURN_IF_ERROR(m.mpi_status(MPI_Ibcast(data.data(), static_cast<int>(data.size()), MPI_BYTE,
                                             root, m.comm, &state->request),
                                  what));
  return run_blocking(PendingOp(std::move(what), std::move(state)), timeout);
}

Status MpiCommunicator::barrier(CollectiveTimeout timeout) {
  Impl& m = *impl_;
  SC_RETURN_IF_ERROR(m.usable());
  auto state = std::make_unique<MpiPendingState>();
  state->owner = &m;
  SC_RETURN_IF_ERROR(m.mpi_status(MPI_Ibarrier(m.comm, &state->request), "barrier"));
  return run_blocking(PendingOp("barrier", std::move(state)), timeout);
}

Status MpiCommunicator::abort_job(const std::string& why) {
  // Messages from our own collectives already name the rank.
  const std::string who = impl_->who();
  if (why.rfind(who + ":", 0) == 0) {
    std::fprintf(stderr, "error: %s\n", why.c_str());
  } else {
    std::fprintf(stderr, "error: %s: %s\n", who.c_str(), why.c_str());
  }
  std::fflush(stderr);
  int rc = MPI_Abort(MPI_COMM_WORLD, 1);
  return Status::internal("{}: MPI_Abort returned: {}", who, mpi_error_text(rc));
}

}  // namespace sc
