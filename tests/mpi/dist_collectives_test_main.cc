// Multi-rank checks of the MPI communicator, run by CTest under
// `mpirun --oversubscribe -np 2` and `-np 4` (see CMakeLists.txt):
//   dist_mpi_check collectives   every collective on patterned data, exact per rank
//   dist_mpi_check timeout       the last rank skips an all_reduce: the others
//                                time out, report, and abort the job
//   dist_mpi_check rank-error    rank 1 hits an error and takes the job down
// A failed check aborts the job with the rank and the check, so mpirun exits
// non-zero with the reason.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dist/communicator.h"
#include "dist/lsan_under_mpi.h"  // sanitizer builds: no leak report from Open MPI's own allocations
#include "dist/mpi_communicator.h"

namespace {

using sc::Communicator;
using sc::Status;
using namespace std::chrono_literals;

constexpr sc::CollectiveTimeout kTimeout = 20s;

// Integers well inside 2^24: every summation order gives the exact sum.
float exact_value(int rank, size_t i) { return static_cast<float>((rank + 1) * 1000 + static_cast<int>(i % 997)); }

// Values whose sum depends on the order: a fixed hash of (rank, i) in [-1, 1).
float rough_value(int rank, size_t i) {
  uint64_t x = (static_cast<uint64_t>(rank) << 40) ^ (i * 0x9E3779B97F4A7C15ull);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<float>(static_cast<double>(x >> 40) / static_cast<double>(1ull << 23) - 1.0);
}

// Pairwise tree over terms in order: level by level, t[i] += t[i+stride].
float pairwise_sum(std::vector<float> terms) {
  for (size_t stride = 1; stride < terms.size(); stride *= 2) {
    for (size_t i = 0; i + stride < terms.size(); i += 2 * stride) terms[i] += terms[i + stride];
  }
  return terms.empty() ? 0.0f : terms[0];
}

// The deterministic communicator's promise: the pairwise tree over ranks.
float sum_over_ranks(int size, size_t i) {
  std::vector<float> terms;
  for (int r = 0; r < size; ++r) terms.push_back(rough_value(r, i));
  return pairwise_sum(terms);
}

struct Checker {
  Communicator& comm;
  int checks = 0;

  void expect(bool ok, const std::string& what) {
    ++checks;
    if (!ok) (void)comm.abort_job("check failed: " + what);
  }
  void expect_ok(const Status& s, const std::string& what) {
    ++checks;
    if (!s.ok()) (void)comm.abort_job(what + ": " + s.message());
  }
};

std::string label(const Communicator& comm, const std::string& what) {
  return fmt::format("[{}] {}", comm.backend_name(), what);
}

void check_all_reduce(Communicator& comm, Checker& c, size_t n) {
  const int size = comm.size(), rank = comm.rank();
  std::vector<float> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = exact_value(rank, i);
  c.expect_ok(comm.all_reduce(data, kTimeout), label(comm, "all_reduce"));
  bool ok = true;
  for (size_t i = 0; i < n && ok; ++i) {
    float expected = 0;
    for (int r = 0; r < size; ++r) expected += exact_value(r, i);
    ok = data[i] == expected;
  }
  c.expect(ok, label(comm, fmt::format("all_reduce of {} exact integers", n)));

  for (size_t i = 0; i < n; ++i) data[i] = rough_value(rank, i);
  c.expect_ok(comm.all_reduce(data, kTimeout), label(comm, "all_reduce (rough)"));
  bool bit_exact = true, close = true;
  for (size_t i = 0; i < n; ++i) {
    const float want = sum_over_ranks(size, i);
    if (std::memcmp(&data[i], &want, sizeof(float)) != 0) bit_exact = false;
    if (std::fabs(data[i] - want) > 1e-5f * static_cast<float>(size)) close = false;
  }
  c.expect(close, label(comm, fmt::format("all_reduce of {} rough floats within tolerance", n)));
  if (comm.deterministic()) {
    c.expect(bit_exact, label(comm, fmt::format("all_reduce of {} floats is the pairwise sum over ranks, bit for bit", n)));
  }
}

void check_reduce_scatter_all_gather(Communicator& comm, Checker& c, size_t per_rank) {
  const int size = comm.size(), rank = comm.rank();
  const size_t n = per_rank * static_cast<size_t>(size);
  const sc::ShardRange mine = sc::shard_range(n, rank, size);
  std::vector<float> input(n), shard(per_rank);
  for (size_t i = 0; i < n; ++i) input[i] = rough_value(rank, i);
  c.expect_ok(comm.reduce_scatter(input, shard, kTimeout), label(comm, "reduce_scatter"));
  bool ok = true;
  for (size_t k = 0; k < per_rank && ok; ++k) {
    const float want = sum_over_ranks(size, mine.begin + k);
    ok = comm.deterministic() ? std::memcmp(&shard[k], &want, sizeof(float)) == 0
                              : std::fabs(shard[k] - want) <= 1e-5f * static_cast<float>(size);
  }
  c.expect(ok, label(comm, fmt::format("reduce_scatter of {} floats gives rank {} elements [{}, {})",
                                       n, rank, mine.begin, mine.end)));

  // all_gather: every rank's shard lands in its range.
  std::vector<float> gathered(n, -1.0f), own(per_rank);
  for (size_t k = 0; k < per_rank; ++k) own[k] = exact_value(rank, k);
  c.expect_ok(comm.all_gather(own, gathered, kTimeout), label(comm, "all_gather"));
  ok = true;
  for (int r = 0; r < size && ok; ++r) {
    sc::ShardRange range = sc::shard_range(n, r, size);
    for (size_t k = 0; k < range.count() && ok; ++k) ok = gathered[range.begin + k] == exact_value(r, k);
  }
  c.expect(ok, label(comm, fmt::format("all_gather of {} floats", n)));

  // ZeRO-1 pattern, in place: reduce grads into this rank's own range, then
  // all-gather every range back over the same buffer.
  std::vector<float> grads(n);
  for (size_t i = 0; i < n; ++i) grads[i] = rough_value(rank, i);
  std::span<float> own_range(grads.data() + mine.begin, mine.count());
  c.expect_ok(comm.reduce_scatter(grads, own_range, kTimeout), label(comm, "reduce_scatter in place"));
  c.expect_ok(comm.all_gather(own_range, grads, kTimeout), label(comm, "all_gather in place"));
  ok = true;
  for (size_t i = 0; i < n && ok; ++i) {
    const float want = sum_over_ranks(size, i);
    ok = comm.deterministic() ? std::memcmp(&grads[i], &want, sizeof(float)) == 0
                              : std::fabs(grads[i] - want) <= 1e-5f * static_cast<float>(size);
  }
  c.expect(ok, label(comm, "in-place reduce_scatter + all_gather equals all_reduce"));
}

// Gradient buckets: several reduce_scatters in flight while "backward" runs.
void check_non_blocking(Communicator& comm, Checker& c) {
  const int size = comm.size(), rank = comm.rank();
  constexpr int kBuckets = 3;
  const size_t per_rank = 5000;
  const size_t n = per_rank * static_cast<size_t>(size);
  std::vector<std::vector<float>> buckets(kBuckets, std::vector<float>(n));
  std::vector<std::vector<float>> shards(kBuckets, std::vector<float>(per_rank));
  std::vector<sc::PendingOp> ops;
  for (int b = 0; b < kBuckets; ++b) {
    for (size_t i = 0; i < n; ++i) buckets[b][i] = exact_value(rank, i + static_cast<size_t>(b));
    auto op = comm.start_reduce_scatter(buckets[b], shards[b]);
    c.expect_ok(op.status(), label(comm, "start_reduce_scatter"));
    ops.push_back(std::move(op).value());
    // Poll between "layers", as the trainer will.
    for (auto& pending : ops) {
      if (pending.active()) c.expect_ok(comm.test(pending).status(), label(comm, "test"));
    }
  }
  for (auto& op : ops) {
    if (op.active()) c.expect_ok(comm.wait(op, kTimeout), label(comm, "wait"));
  }
  const sc::ShardRange mine = sc::shard_range(n, rank, size);
  bool ok = true;
  for (int b = 0; b < kBuckets && ok; ++b) {
    for (size_t k = 0; k < per_rank && ok; ++k) {
      float want = 0;
      for (int r = 0; r < size; ++r) want += exact_value(r, mine.begin + k + static_cast<size_t>(b));
      ok = shards[b][k] == want;
    }
  }
  c.expect(ok, label(comm, "three overlapping reduce_scatter buckets"));
  c.expect(!comm.wait(ops[0], kTimeout).ok(), label(comm, "wait on a finished op is an error"));

  std::vector<float> data(777);
  for (size_t i = 0; i < data.size(); ++i) data[i] = rough_value(rank, i);
  auto op = comm.start_all_reduce(data);
  c.expect_ok(op.status(), label(comm, "start_all_reduce"));
  c.expect_ok(comm.wait(op.value(), kTimeout), label(comm, "wait all_reduce"));
  bool close = true;
  for (size_t i = 0; i < data.size(); ++i) {
    const float want = sum_over_ranks(size, i);
    close = close && (comm.deterministic() ? std::memcmp(&data[i], &want, 4) == 0
                                           : std::fabs(data[i] - want) <= 1e-5f * static_cast<float>(size));
  }
  c.expect(close, label(comm, "non-blocking all_reduce"));
}

size_t a2a_count(int from, int to) { return static_cast<size_t>((from + 2 * to) % 5 + 1); }
float a2a_value(int from, int to, size_t k) { return static_cast<float>(from * 10000 + to * 100 + static_cast<int>(k)); }

void check_all_to_all_v(Communicator& comm, Checker& c) {
  const int size = comm.size(), rank = comm.rank();
  std::vector<size_t> send_counts(size), send_offsets(size), recv_counts(size), recv_offsets(size);
  size_t send_total = 0, recv_total = 0;
  for (int j = 0; j < size; ++j) {
    send_counts[j] = a2a_count(rank, j);
    send_offsets[j] = send_total;
    send_total += send_counts[j];
    recv_counts[j] = a2a_count(j, rank);
    recv_offsets[j] = recv_total;
    recv_total += recv_counts[j];
  }
  std::vector<float> send(send_total), recv(recv_total, -1.0f);
  for (int j = 0; j < size; ++j) {
    for (size_t k = 0; k < send_counts[j]; ++k) send[send_offsets[j] + k] = a2a_value(rank, j, k);
  }
  c.expect_ok(comm.all_to_all_v(send, send_counts, send_offsets, recv, recv_counts, recv_offsets, kTimeout),
              label(comm, "all_to_all_v"));
  bool ok = true;
  for (int i = 0; i < size; ++i) {
    for (size_t k = 0; k < recv_counts[i]; ++k) ok = ok && recv[recv_offsets[i] + k] == a2a_value(i, rank, k);
  }
  c.expect(ok, label(comm, "all_to_all_v delivers each rank's part"));
}

void check_broadcast_barrier(Communicator& comm, Checker& c) {
  const int root = comm.size() - 1;
  std::vector<std::byte> bytes(100, std::byte{0});
  if (comm.rank() == root) {
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i * 7 + 3);
  }
  c.expect_ok(comm.broadcast(bytes, root, kTimeout), label(comm, "broadcast"));
  bool ok = true;
  for (size_t i = 0; i < bytes.size(); ++i) ok = ok && bytes[i] == static_cast<std::byte>(i * 7 + 3);
  c.expect(ok, label(comm, "broadcast of 100 bytes from the last rank"));
  c.expect_ok(comm.barrier(kTimeout), label(comm, "barrier"));
  c.expect(!comm.broadcast(bytes, comm.size(), kTimeout).ok(), label(comm, "broadcast from a rank that does not exist is refused"));
}

// A global batch of 8 micro-batches on `size` ranks: each rank sums its own
// micro-batches pairwise, then all_reduce. The result must be the bits one
// rank gets summing all 8 pairwise, whatever the rank count (1, 2, 4, 8).
void check_same_bits_as_one_rank(Communicator& comm, Checker& c) {
  constexpr int kMicroBatches = 8;
  const int size = comm.size(), rank = comm.rank();
  if (!comm.deterministic() || kMicroBatches % size != 0) return;
  const int per_rank = kMicroBatches / size;
  const size_t n = 4099;
  std::vector<float> grads(n);
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> mine;
    for (int m = rank * per_rank; m < (rank + 1) * per_rank; ++m) mine.push_back(rough_value(100 + m, i));
    grads[i] = pairwise_sum(mine);
  }
  c.expect_ok(comm.all_reduce(grads, kTimeout), label(comm, "all_reduce of micro-batch sums"));
  bool same = true;
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> all;
    for (int m = 0; m < kMicroBatches; ++m) all.push_back(rough_value(100 + m, i));
    const float one_rank = pairwise_sum(all);
    same = same && std::memcmp(&grads[i], &one_rank, sizeof(float)) == 0;
  }
  c.expect(same, label(comm, fmt::format("8 micro-batches on {} ranks give the 1-rank bits", size)));
}

void check_invalid_arguments(Communicator& comm, Checker& c) {
  const size_t n = static_cast<size_t>(comm.size()) * 4 + 1;  // not divisible by size
  std::vector<float> input(n), shard(4);
  Status s = comm.reduce_scatter(input, shard, kTimeout);
  c.expect(s.code() == sc::StatusCode::kInvalidArgument, label(comm, "reduce_scatter of an uneven buffer is refused"));
}

int run_collectives() {
  // Both kept alive: MPI is finalized when the last communicator dies.
  std::vector<std::unique_ptr<sc::MpiCommunicator>> comms;
  for (bool deterministic : {true, false}) {
    auto made = sc::MpiCommunicator::create(deterministic);
    if (!made.ok()) {
      std::fprintf(stderr, "error: %s\n", made.status().message().c_str());
      return 1;
    }
    comms.push_back(std::move(made).value());
  }
  for (auto& owned : comms) {
    Communicator& comm = *owned;
    Checker c{comm};
    if (comm.size() < 2) (void)comm.abort_job("run me under mpirun with at least 2 ranks");
    for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{10007}, size_t{1} << 20}) check_all_reduce(comm, c, n);
    for (size_t per_rank : {size_t{1}, size_t{1000}, size_t{100000}}) check_reduce_scatter_all_gather(comm, c, per_rank);
    {
      // Bytes on the wire per rank: (size-1)/size of the buffer for a
      // reduce-scatter and again for an all-gather (the ring's figure).
      const size_t n = 1000 * static_cast<size_t>(comm.size());
      std::vector<float> buffer(n, 1.0f);
      const uint64_t before = comm.bytes_sent();
      const sc::ShardRange mine = sc::shard_range(n, comm.rank(), comm.size());
      c.expect_ok(comm.reduce_scatter(buffer, {buffer.data() + mine.begin, mine.count()}, kTimeout),
                  label(comm, "reduce_scatter for the byte count"));
      c.expect_ok(comm.all_gather({buffer.data() + mine.begin, mine.count()}, buffer, kTimeout),
                  label(comm, "all_gather for the byte count"));
      c.expect(comm.bytes_sent() - before == 2 * (n - 1000) * sizeof(float),
               label(comm, "bytes_sent counts 2(size-1)/size of the buffer for reduce_scatter + all_gather"));
    }
    check_non_blocking(comm, c);
    check_all_to_all_v(comm, c);
    check_broadcast_barrier(comm, c);
    check_same_bits_as_one_rank(comm, c);
    check_invalid_arguments(comm, c);
    std::printf("rank %d of %d [%s]: %d checks passed\n", comm.rank(), comm.size(),
                comm.backend_name().c_str(), c.checks);
    std::fflush(stdout);
  }
  return 0;
}

// The last rank never joins the all_reduce (a stalled rank); the others must
// get Status::timeout naming the collective and their rank, then end the job.
int run_timeout() {
  auto made = sc::make_communicator();
  if (!made.ok()) {
    std::fprintf(stderr, "error: %s\n", made.status().message().c_str());
    return 1;
  }
  Communicator& comm = *made.value();
  if (comm.rank() == comm.size() - 1) {
    std::this_thread::sleep_for(30s);  // killed by the others' abort long before
    return 0;
  }
  std::vector<float> data(1024, 1.0f);
  Status s = comm.all_reduce(data, 1000ms);
  if (s.code() != sc::StatusCode::kTimeout) (void)comm.abort_job("expected a timeout, got: " + (s.ok() ? std::string("ok") : s.message()));
  Status after = comm.barrier(1000ms);
  if (after.ok() || after.message().find("unusable") == std::string::npos) {
    (void)comm.abort_job("after a timeout the communicator must refuse work");
  }
  (void)comm.abort_job(s.message());
  return 1;
}

// Rank 1 gets an error from a call; it must take the job down with its
// message while the others wait in a barrier with a long timeout.
int run_rank_error() {
  auto made = sc::make_communicator();
  if (!made.ok()) {
    std::fprintf(stderr, "error: %s\n", made.status().message().c_str());
    return 1;
  }
  Communicator& comm = *made.value();
  if (comm.rank() == 1) {
    std::vector<float> input(comm.size() * 3 + 1), shard(3);
    Status s = comm.reduce_scatter(input, shard, kTimeout);
    (void)comm.abort_job("injected failure on rank 1: " + s.message());
    return 1;
  }
  Status s = comm.barrier(60s);
  std::fprintf(stderr, "rank %d: barrier returned (%s) but rank 1 should have aborted the job\n",
               comm.rank(), s.ok() ? "ok" : s.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "collectives") return run_collectives();
  if (mode == "timeout") return run_timeout();
  if (mode == "rank-error") return run_rank_error();
  std::fprintf(stderr, "usage: mpirun -np N dist_mpi_check collectives|timeout|rank-error\n");
  return 2;
}
