// Communicator: the collectives a data-, tensor- or expert-parallel job needs,
// over one group of ranks. Implementations: single process (size 1) and MPI;
// NCCL comes with the CUDA backend behind the same interface.
//
// Every blocking call and every wait takes a timeout and returns
// Status::timeout naming the collective and the rank instead of hanging. A
// collective that timed out cannot be cancelled (the other ranks may join it
// later), so after a timeout the communicator refuses further work and the
// caller's only correct move is abort_job(). docs/communicator.md has the
// shard layout, the determinism guarantees and how ranks are launched.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sc {

using CollectiveTimeout = std::chrono::milliseconds;

// Elements [begin, end) of an n-element buffer that rank `rank` of `size`
// owns in reduce_scatter / all_gather: [rank·n/size, (rank+1)·n/size).
struct ShardRange {
  size_t begin = 0;
  size_t end = 0;
  size_t count() const { return end - begin; }
};
ShardRange shard_range(size_t n, int rank, int size);

// n rounded up to a multiple of `multiple` (e.g. size × alignment), the length
// a caller pads its buffer to so that reduce_scatter's equal shards exist.
size_t padded_count(size_t n, size_t multiple);

// Implementation-owned state of one in-flight non-blocking collective.
class PendingOpState {
 public:
  virtual ~PendingOpState() = default;
};

// A started non-blocking collective. Move-only; wait() completes it and makes
// it inactive. The buffers passed to start_*() must stay alive and untouched
// until wait() returns ok; destroying an active PendingOp is a bug (MPI cannot
// cancel a collective).
class PendingOp {
 public:
  PendingOp() = default;
  PendingOp(std::string description, std::unique_ptr<PendingOpState> state)
      : description_(std::move(description)), state_(std::move(state)) {}
  PendingOp(PendingOp&&) = default;
  PendingOp& operator=(PendingOp&&) = default;

  bool active() const { return state_ != nullptr; }
  // "reduce_scatter of 4096 floats": used in timeout and error messages.
  const std::string& description() const { return description_; }
  PendingOpState* state() const { return state_.get(); }
  void finish() { state_.reset(); }

 private:
  std::string description_;
  std::unique_ptr<PendingOpState> state_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "single" or "mpi"; with " (deterministic)" when sums have a fixed order.
  virtual std::string backend_name() const = 0;
  // True when all_reduce and reduce_scatter sum in a fixed pairwise order over
  // ranks (bit-identical run to run and on every rank; docs/communicator.md).
  virtual bool deterministic() const = 0;

  // --- Blocking collectives (all ranks call them in the same order) ---

  // Sum over ranks, in place; every rank gets the same n floats.
  virtual Status all_reduce(std::span<float> data, CollectiveTimeout timeout) = 0;
  // Sum over ranks of `input` (n floats, n divisible by size()); this rank gets
  // elements shard_range(n, rank(), size()) of the sum in `shard` (n/size
  // floats). `shard` may be exactly that range of `input` (in place) or must
  // not overlap it.
  virtual Status reduce_scatter(std::span<const float> input, std::span<float> shard,
                                CollectiveTimeout timeout) = 0;
  // Inverse of reduce_scatter: rank r's `shard` (n/size floats) lands in
  // elements shard_range(n, r, size) of `output` on every rank. `shard` may be
  // exactly this rank's range of `output` (in place) or must not overlap it.
  virtual Status all_gather(std::span<const float> shard, std::span<float> output,
                            CollectiveTimeout timeout) = 0;
  // Rank r sends send[send_offsets[j], +send_counts[j]) to rank j, which puts
  // it at recv[recv_offsets[r], +recv_counts[r]). Counts and offsets are in
  // floats, one per rank; send_counts[j] on rank r must equal recv_counts[r]
  // on rank j. For expert parallelism (token dispatch and combine).
  virtual Status all_to_all_v(std::span<const float> send, std::span<const size_t> send_counts,
                              std::span<const size_t> send_offsets, std::span<float> recv,
                              std::span<const size_t> recv_counts,
                              std::span<const size_t> recv_offsets, CollectiveTimeout timeout) = 0;
  // Copies `root`'s bytes into `data` on every other rank (same length on all).
  virtual Status broadcast(std::span<std::byte> data, int root, CollectiveTimeout timeout) = 0;
  virtual Status barrier(CollectiveTimeout timeout) = 0;

  // --- Non-blocking collectives, for gradient buckets that overlap backward ---
  // Same arguments and results as the blocking versions. MPI progresses them
  // only inside MPI calls: call test() now and then (e.g. after each layer's
  // backward) so they advance while compute runs.
  virtual Result<PendingOp> start_all_reduce(std::span<float> data) = 0;
  virtual Result<PendingOp> start_reduce_scatter(std::span<const float> input,
                                                 std::span<float> shard) = 0;
  virtual Result<PendingOp> start_all_gather(std::span<const float> shard,
                                             std::span<float> output) = 0;
  // Advances `op` without blocking; true when it has completed (then `op` is
  // inactive and its results are in place).
  virtual Result<bool> test(PendingOp& op) = 0;
  // Completes `op`, or returns Status::timeout after `timeout`.
  virtual Status wait(PendingOp& op, CollectiveTimeout timeout) = 0;

  // Ends the whole job: prints "error: rank R of N: why" to stderr and makes
  // every rank exit non-zero (MPI_Abort under MPI; exit(1) in one process).
  // Returns only if that failed.
  virtual Status abort_job(const std::string& why) = 0;

  // Bytes of payload this rank has sent to other ranks so far: what each
  // collective's algorithm puts on the wire from this rank, e.g. (size-1)
  // shards for a reduce-scatter or an all-gather (docs/communicator.md).
  uint64_t bytes_sent() const { return bytes_sent_; }

 protected:
  void count_sent(uint64_t bytes) { bytes_sent_ += bytes; }

 private:
  uint64_t bytes_sent_ = 0;
};

struct CommunicatorOptions {
  enum class Backend {
    kAuto,           // MPI when launched by mpirun / srun (or MPI is already up), else single
    kSingleProcess,  // size 1, no MPI
    kMpi,            // always MPI (a lone process becomes an MPI singleton of size 1)
  };
  Backend backend = Backend::kAuto;
  // Fixed-order sums (gather shards to their owner, sum them pairwise in rank
  // order). Same bytes on the wire as a ring; docs/communicator.md says what
  // it guarantees.
  bool deterministic = true;
};

// The communicator for this process. Rank and size always come from MPI,
// never from launcher environment variables.
Result<std::unique_ptr<Communicator>> make_communicator(const CommunicatorOptions& options = {});

// Argument checks shared by every implementation, so a call that is wrong on
// one backend is wrong on all of them.
namespace dist_checks {
Status reduce_scatter_args(std::span<const float> input, std::span<const float> shard, int rank,
                           int size);
Status all_gather_args(std::span<const float> shard, std::span<const float> output, int rank,
                       int size);
Status all_to_all_v_args(size_t send_len, std::span<const size_t> send_counts,
                         std::span<const size_t> send_offsets, size_t recv_len,
                         std::span<const size_t> recv_counts, std::span<const size_t> recv_offsets,
                         int size);
Status root_arg(int root, int size);
// True when `part` is exactly elements [range.begin, range.end) of `whole`.
bool is_subrange(std::span<const float> whole, std::span<const float> part, ShardRange range);
bool overlaps(std::span<const float> a, std::span<const float> b);
}  // namespace dist_checks

}  // namespace sc
