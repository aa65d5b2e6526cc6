#include "train/data_parallel.h"

#include <bit>
#include <cstring>

#include "kernels/elementwise.h"

namespace sc {

size_t BucketPlan::granule(int world) { return static_cast<size_t>(world) * kSumSquaresChunk; }

Result<BucketPlan> BucketPlan::make(size_t buffer_floats, int world, size_t bucket_floats) {
  if (world < 1) return Status::invalid("bucket plan: {} ranks", world);
  const size_t unit = granule(world);
  if (buffer_floats == 0 || buffer_floats % unit != 0) {
    return Status::invalid("bucket plan: buffer of {} floats is not a positive multiple of {} ({} ranks x {})",
                           buffer_floats, unit, world, kSumSquaresChunk);
  }
  BucketPlan plan;
  plan.world_ = world;
  plan.buffer_floats_ = buffer_floats;
  const size_t size = std::max(unit, (bucket_floats + unit - 1) / unit * unit);
  for (size_t end = buffer_floats; end > 0;) {
    const size_t begin = end > size ? end - size : 0;
    plan.buckets_.push_back({begin, end});
    end = begin;
  }
  return plan;
}

BufferRange BucketPlan::shard(size_t bucket, int rank) const {
  const BufferRange& b = buckets_[bucket];
  const size_t length = b.size() / static_cast<size_t>(world_);
  return {b.begin + static_cast<size_t>(rank) * length, b.begin + static_cast<size_t>(rank + 1) * length};
}

std::vector<OwnedSegment> BucketPlan::owned(int rank) const {
  std::vector<OwnedSegment> segments;
  size_t local = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const BufferRange s = shard(b, rank);
    segments.push_back({s.begin, s.end, local});
    local += s.size();
  }
  return segments;
}

Result<GradientSync> GradientSync::create(Communicator& comm, ThreadPool& pool, BucketPlan plan, float* grads,
                                          float* params, int micro_batches) {
  if (plan.world() != comm.size()) {
    return Status::invalid("gradient sync: plan for {} ranks on a communicator of {}", plan.world(), comm.size());
  }
  if (micro_batches < 1) return Status::invalid("gradient sync: {} micro-batches per step", micro_batches);
  GradientSync sync;
  sync.comm_ = &comm;
  sync.pool_ = &pool;
  sync.plan_ = std::move(plan);
  sync.grads_ = grads;
  sync.params_ = params;
  sync.rank_ = comm.rank();
  // Levels of the binary counter over micro-batches 0 .. n-2 (the last one is
  // folded in bucket by bucket): bit_width(n-1) levels, as many buffers.
  const size_t levels = static_cast<size_t>(std::bit_width(static_cast<unsigned>(micro_batches - 1)));
  sync.level_.assign(levels, nullptr);
  if (levels > 0) {
    const size_t n = sync.plan_.buffer_floats();
    SC_ASSIGN_OR_RETURN(sync.partial_arena_,
                        Arena::create(levels * (n * sizeof(float) + 64), "gradient accumulation (pairwise partial sums)"));
    for (size_t l = 0; l < levels; ++l) {
      SC_ASSIGN_OR_RETURN(float* buffer, sync.partial_arena_.allocate<float>(n));
      sync.free_.push_back(buffer);
    }
  }
  sync.chunk_sums_.resize(sync.plan_.owned_floats() / kSumSquaresChunk);
  return sync;
}

Status GradientSync::accumulate() {
  // carry = this micro-batch's gradients; adding it to an occupied level
  // makes that level's buffer the carry for the next one (earlier + later,
  // the communicator's order too).
  const size_t n = plan_.buffer_floats();
  float* carry = nullptr;
  for (size_t l = 0; l < level_.size(); ++l) {
    if (level_[l] == nullptr) {
      if (carry == nullptr) {
        carry = free_.back();
        free_.pop_back();
        copy(*pool_, carry, grads_, n);
      }
      level_[l] = carry;
      return Status();
    }
    if (carry == nullptr) {
      add_inplace(*pool_, level_[l], grads_, n);
    } else {
      add_inplace(*pool_, level_[l], carry, n);
      free_.push_back(carry);
    }
    carry = level_[l];
    level_[l] = nullptr;
  }
  return Status::internal("gradient accumulation: more micro-batches in a step than the {} planned",
                          (size_t{1} << level_.size()));
}

Status GradientSync::start_bucket(size_t bucket) {
  const BufferRange range = plan_.buckets()[bucket];
  // Fold the partial sums in, lowest level first: level k holds earlier
  // micro-batches than level k-1, so it is the left operand.
  for (float* partial : level_) {
    if (partial == nullptr) continue;
    add(*pool_, grads_ + range.begin, partial + range.begin, grads_ + range.begin, range.size());
  }
  const BufferRange mine = plan_.shard(bucket, rank_);
  SC_ASSIGN_OR_RETURN(PendingOp op, comm_->start_reduce_scatter({grads_ + range.begin, range.size()},
                                                                {grads_ + mine.begin, mine.size()}));
  pending_.push_back(std::move(op));
  return Status();
}

Status GradientSync::progress() {
  for (PendingOp& op : pending_) {
    if (op.active()) SC_RETURN_IF_ERROR(comm_->test(op).status());
  }
  return Status();
}

Status GradientSync::grads_final(size_t offset) {
  const auto& buckets = plan_.buckets();
  while (next_bucket_ < buckets.size() && buckets[next_bucket_].begin >= offset) {
    SC_RETURN_IF_ERROR(start_bucket(next_bucket_++));
  }
  return progress();
}

Status GradientSync::finish_reduce(CollectiveTimeout timeout) {
  SC_RETURN_IF_ERROR(grads_final(0));
  for (PendingOp& op : pending_) {
    if (op.active()) SC_RETURN_IF_ERROR(comm_->wait(op, timeout));
  }
  pending_.clear();
  next_bucket_ = 0;
  // The step's partial sums are spent.
  for (float*& partial : level_) {
    if (partial != nullptr) free_.push_back(partial);
    partial = nullptr;
  }
  return Status();
}

Result<std::vector<std::vector<double>>> all_gather_doubles(Communicator& comm, const std::vector<double>& local,
                                                            CollectiveTimeout timeout) {
  const size_t n = local.size(), world = static_cast<size_t>(comm.size());
  std::vector<double> gathered(n * world);
  // all_gather moves bytes exactly, so doubles travel as pairs of floats.
  SC_RETURN_IF_ERROR(comm.all_gather({reinterpret_cast<const float*>(local.data()), 2 * n},
                                     {reinterpret_cast<float*>(gathered.data()), 2 * n * world}, timeout));
  std::vector<std::vector<double>> by_rank;
  for (size_t r = 0; r < world; ++r) by_rank.emplace_back(gathered.begin() + r * n, gathered.begin() + (r + 1) * n);
  return by_rank;
}

Result<GradientSync::Exchanged> GradientSync::exchange(const std::vector<double>& local, CollectiveTimeout timeout) {
  // Chunk sums of this rank's shards, in its packed (bucket) order.
  size_t c = 0;
  for (const OwnedSegment& segment : plan_.owned(rank_)) {
    const size_t n = segment.end - segment.begin;
    sum_squares_per_chunk(*pool_, grads_ + segment.begin, n, chunk_sums_.data() + c);
    c += n / kSumSquaresChunk;
  }
  std::vector<double> mine(chunk_sums_);
  mine.insert(mine.end(), local.begin(), local.end());
  SC_ASSIGN_OR_RETURN(std::vector<std::vector<double>> gathered, all_gather_doubles(*comm_, mine, timeout));
  // Every chunk sum back at its place in the buffer, then summed in buffer
  // order: the bits of sum_squares over the whole buffer on one process.
  std::vector<double> by_chunk(plan_.buffer_floats() / kSumSquaresChunk, 0.0);
  Exchanged out;
  for (size_t r = 0; r < gathered.size(); ++r) {
    const double* from = gathered[r].data();
    for (const OwnedSegment& segment : plan_.owned(static_cast<int>(r))) {
      const size_t n = (segment.end - segment.begin) / kSumSquaresChunk;
      std::memcpy(by_chunk.data() + segment.begin / kSumSquaresChunk, from + segment.local / kSumSquaresChunk,
                  n * sizeof(double));
    }
    out.by_rank.emplace_back(gathered[r].begin() + static_cast<std::ptrdiff_t>(chunk_sums_.size()), gathered[r].end());
  }
  for (double s : by_chunk) out.sum_squares += s;
  return out;
}

Status GradientSync::start_gather_params() {
  for (const PendingOp& op : gathers_) {
    if (op.active()) return Status::internal("parameter gather started while the previous one is still pending");
  }
  gathers_.resize(plan_.buckets().size());
  // The bucket at the start of the buffer is the last one: forward needs it first.
  for (size_t b = plan_.buckets().size(); b-- > 0;) {
    const BufferRange range = plan_.buckets()[b];
    const BufferRange mine = plan_.shard(b, rank_);
    SC_ASSIGN_OR_RETURN(gathers_[b], comm_->start_all_gather({params_ + mine.begin, mine.size()},
                                                             {params_ + range.begin, range.size()}));
  }
  return Status();
}

Status GradientSync::params_needed(size_t end, CollectiveTimeout timeout) {
  for (size_t b = 0; b < gathers_.size(); ++b) {
    PendingOp& op = gathers_[b];
    if (!op.active()) continue;
    if (plan_.buckets()[b].begin < end) {
      SC_RETURN_IF_ERROR(comm_->wait(op, timeout));
    } else {
      SC_RETURN_IF_ERROR(comm_->test(op).status());
    }
  }
  return Status();
}

Status GradientSync::finish_gather_params(CollectiveTimeout timeout) {
  return params_needed(plan_.buffer_floats(), timeout);
}

}  // namespace sc
