// Data parallelism with a ZeRO stage-1 sharded optimizer (Rajbhandari et al.
// 2020), as Megatron-LM's distributed optimizer does it: the flat gradient
// buffer is cut into buckets; each bucket is reduce-scattered as soon as the
// backward pass has finished writing it (overlapping the rest of backward),
// so rank r ends up holding the summed gradients of its shard of every
// bucket; AdamW keeps moments for those shards only; the updated shards are
// all-gathered back into every rank's full parameter buffer while the next
// forward runs (each layer waits for the buckets it reads).
//
// Bit-for-bit across rank counts: the global batch is G micro-batches in a
// fixed order (data/loader.h); rank r runs G/ranks of them; each rank sums
// its micro-batch gradients with a pairwise tree and the communicator sums
// ranks with the same tree (docs/communicator.md), so with power-of-two
// counts the reduced gradient is the pairwise tree over all G micro-batches
// on 1, 2 or 4 ranks. Shards are cut on kSumSquaresChunk boundaries and the
// gradient norm sums every rank's chunk sums in buffer order: the same bits
// as one process computing the norm of the whole buffer.
#pragma once

#include <cstddef>
#include <vector>

#include "core/arena.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "dist/communicator.h"
#include "train/adamw.h"

namespace sc {

struct BufferRange {
  size_t begin = 0;
  size_t end = 0;
  size_t size() const { return end - begin; }
};

// How the flat buffer is cut: buckets in the order backward finishes them
// (from the end of the buffer to its start), each divided into `world` equal
// shards; every boundary is a multiple of granule(world).
class BucketPlan {
 public:
  // One gradient-norm chunk per rank: shards never split a chunk.
  static size_t granule(int world);
  // `buffer_floats` must be a multiple of granule(world); buckets hold
  // `bucket_floats` rounded up to the granule (the last one the remainder).
  static Result<BucketPlan> make(size_t buffer_floats, int world, size_t bucket_floats);

  int world() const { return world_; }
  size_t buffer_floats() const { return buffer_floats_; }
  const std::vector<BufferRange>& buckets() const { return buckets_; }
  BufferRange shard(size_t bucket, int rank) const;
  // Rank r's shards of every bucket, in bucket order, with their offsets in
  // the rank's packed optimizer state.
  std::vector<OwnedSegment> owned(int rank) const;
  size_t owned_floats() const { return buffer_floats_ / static_cast<size_t>(world_); }

 private:
  int world_ = 1;
  size_t buffer_floats_ = 0;
  std::vector<BufferRange> buckets_;
};

// Every rank's `local` doubles (the same count on each), rank by rank: one
// all-gather that moves the bytes exactly.
Result<std::vector<std::vector<double>>> all_gather_doubles(Communicator& comm, const std::vector<double>& local,
                                                            CollectiveTimeout timeout);

class GradientSync {
 public:
  // `grads` and `params` are the model's padded buffers (plan.buffer_floats()
  // floats); `micro_batches` is this rank's micro-batches per step.
  static Result<GradientSync> create(Communicator& comm, ThreadPool& pool, BucketPlan plan, float* grads,
                                     float* params, int micro_batches);

  const BucketPlan& plan() const { return plan_; }

  // After the backward of a micro-batch that is not the step's last: folds
  // its gradients into the pairwise partial sums (the caller zeroes grads()
  // before the next one).
  Status accumulate();
  // The hook for the last micro-batch's backward (Model::GradsFinalHook):
  // buckets inside [offset, end) get the partial sums folded in and their
  // reduce-scatter started; pending ones are moved along.
  Status grads_final(size_t offset);
  // Starts what is left, waits for every reduce-scatter. Then grads() holds,
  // in this rank's shards, the gradients summed over all micro-batches of all
  // ranks (the rest of the buffer is stale).
  Status finish_reduce(CollectiveTimeout timeout);

  // One all-gather after finish_reduce: the global Σ grad² in the order of
  // one process, and every rank's `local` doubles (same length on every
  // rank), rank by rank. Per-step statistics ride along with the norm.
  struct Exchanged {
    double sum_squares = 0;
    std::vector<std::vector<double>> by_rank;
  };
  Result<Exchanged> exchange(const std::vector<double>& local, CollectiveTimeout timeout);

  // After the optimizer updated this rank's shards, every rank needs them
  // all. start_gather_params starts one all-gather per bucket, in the order
  // the next forward needs them (from the start of the buffer);
  // params_needed(end) (Model::ParamsNeededHook) waits for the buckets
  // inside [0, end) and moves the others along, so the gathers overlap the
  // next forward (Megatron's overlapped parameter gather);
  // finish_gather_params waits for all of them (before anything else reads
  // or writes the parameters: evaluation, a checkpoint, a rollback).
  Status start_gather_params();
  Status params_needed(size_t end, CollectiveTimeout timeout);
  Status finish_gather_params(CollectiveTimeout timeout);

 private:
  GradientSync() = default;
  Status start_bucket(size_t bucket);
  Status progress();

  Communicator* comm_ = nullptr;
  ThreadPool* pool_ = nullptr;
  BucketPlan plan_;
  float* grads_ = nullptr;
  float* params_ = nullptr;
  int rank_ = 0;
  // Pairwise partial sums: level k holds the sum of 2^k micro-batches (a
  // binary counter); buffers move between levels by pointer.
  Arena partial_arena_;
  std::vector<float*> level_;     // nullptr when the level is empty
  std::vector<float*> free_;      // spare buffers
  size_t next_bucket_ = 0;        // buckets started in this step
  std::vector<PendingOp> pending_;
  std::vector<PendingOp> gathers_;  // by bucket; inactive once complete
  std::vector<double> chunk_sums_;
};

}  // namespace sc
