// Single-process communicator and the shared argument checks. The multi-rank
// behaviour is checked under real mpirun by tests/mpi/dist_collectives_test_main.cc.
#include "dist/communicator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "dist/single_process.h"

namespace sc {
namespace {

using namespace std::chrono_literals;

TEST(DistShardRange, SplitsEvenlyAndCoversEverything) {
  EXPECT_EQ(shard_range(12, 0, 4).begin, 0u);
  EXPECT_EQ(shard_range(12, 1, 4).begin, 3u);
  EXPECT_EQ(shard_range(12, 3, 4).end, 12u);
  // Uneven n (all_reduce's internal split): ranges still tile [0, n).
  for (size_t n : {0, 1, 3, 10, 10007}) {
    for (int size : {1, 2, 3, 4, 7}) {
      size_t next = 0;
      for (int r = 0; r < size; ++r) {
        ShardRange range = shard_range(n, r, size);
        EXPECT_EQ(range.begin, next);
        EXPECT_LE(range.count(), n / size + 1);
        next = range.end;
      }
      EXPECT_EQ(next, n);
    }
  }
  EXPECT_EQ(padded_count(10, 4), 12u);
  EXPECT_EQ(padded_count(12, 4), 12u);
  EXPECT_EQ(padded_count(0, 4), 0u);
}

TEST(DistSingleProcess, RankAndSize) {
  SingleProcessCommunicator comm;
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.size(), 1);
  EXPECT_TRUE(comm.deterministic());
  EXPECT_EQ(comm.backend_name(), "single");
}

TEST(DistSingleProcess, CollectivesAreCopies) {
  SingleProcessCommunicator comm;
  std::vector<float> data = {1.5f, -2.0f, -0.0f};
  ASSERT_TRUE(comm.all_reduce(data, 1s).ok());
  EXPECT_EQ(data, (std::vector<float>{1.5f, -2.0f, -0.0f}));

  std::vector<float> shard(3, 0.0f);
  ASSERT_TRUE(comm.reduce_scatter(data, shard, 1s).ok());
  EXPECT_EQ(shard, data);

  std::vector<float> gathered(3, 0.0f);
  ASSERT_TRUE(comm.all_gather(shard, gathered, 1s).ok());
  EXPECT_EQ(gathered, data);

  // In place: the shard is the rank's whole range of the buffer.
  ASSERT_TRUE(comm.reduce_scatter(data, std::span<float>(data), 1s).ok());
  ASSERT_TRUE(comm.all_gather(std::span<const float>(data), data, 1s).ok());

  std::vector<float> send = {9, 1, 2, 3, 9}, recv(4, 0.0f);
  std::vector<size_t> send_counts = {3}, send_offsets = {1}, recv_counts = {3}, recv_offsets = {1};
  ASSERT_TRUE(comm.all_to_all_v(send, send_counts, send_offsets, recv, recv_counts, recv_offsets, 1s).ok());
  EXPECT_EQ(recv, (std::vector<float>{0, 1, 2, 3}));

  std::vector<std::byte> bytes(4, std::byte{7});
  ASSERT_TRUE(comm.broadcast(bytes, 0, 1s).ok());
  EXPECT_EQ(bytes[3], std::byte{7});
  EXPECT_TRUE(comm.barrier(1s).ok());
}

TEST(DistSingleProcess, RejectsBadArguments) {
  SingleProcessCommunicator comm;
  std::vector<float> input(8), small(7), other(8);
  EXPECT_EQ(comm.reduce_scatter(input, small, 1s).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(comm.all_gather(small, input, 1s).code(), StatusCode::kInvalidArgument);
  // Overlapping but not exactly the rank's range.
  EXPECT_EQ(comm.reduce_scatter(std::span<const float>(input).subspan(0, 8),
                                std::span<float>(input).subspan(1, 7), 1s)
                .code(),
            StatusCode::kInvalidArgument);
  std::vector<std::byte> bytes(4);
  Status bad_root = comm.broadcast(bytes, 1, 1s);
  EXPECT_EQ(bad_root.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_root.message().find("root 1"), std::string::npos) << bad_root.message();

  std::vector<float> send(4), recv(4);
  std::vector<size_t> counts = {3}, offsets = {2}, zero = {0};
  EXPECT_EQ(comm.all_to_all_v(send, counts, offsets, recv, counts, zero, 1s).code(),
            StatusCode::kInvalidArgument);  // send part runs past the buffer
  std::vector<size_t> two = {1, 1};
  EXPECT_EQ(comm.all_to_all_v(send, two, two, recv, two, two, 1s).code(), StatusCode::kInvalidArgument);
  std::vector<size_t> one = {1}, two_count = {2};
  EXPECT_EQ(comm.all_to_all_v(send, one, zero, recv, two_count, zero, 1s).code(),
            StatusCode::kInvalidArgument);  // sends 1 to itself, expects 2
}

TEST(DistSingleProcess, NonBlockingOpsCompleteOnce) {
  SingleProcessCommunicator comm;
  std::vector<float> input = {1, 2, 3, 4}, shard(4);
  auto op = comm.start_reduce_scatter(input, shard);
  ASSERT_TRUE(op.ok()) << op.status().message();
  EXPECT_TRUE(op->active());
  EXPECT_EQ(op->description(), "reduce_scatter of 4 floats");
  ASSERT_TRUE(comm.wait(*op, 1s).ok());
  EXPECT_FALSE(op->active());
  EXPECT_EQ(shard, input);
  EXPECT_EQ(comm.wait(*op, 1s).code(), StatusCode::kInvalidArgument);

  auto reduce = comm.start_all_reduce(input);
  ASSERT_TRUE(reduce.ok());
  auto done = comm.test(*reduce);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(*done);

  std::vector<float> gathered(4);
  auto gather = comm.start_all_gather(shard, gathered);
  ASSERT_TRUE(gather.ok());
  ASSERT_TRUE(comm.wait(*gather, 0ms).ok());
  EXPECT_EQ(gathered, input);

  EXPECT_FALSE(comm.start_reduce_scatter(input, std::span<float>(shard).subspan(0, 3)).ok());
  PendingOp never_started;
  EXPECT_EQ(comm.wait(never_started, 1s).code(), StatusCode::kInvalidArgument);
}

TEST(DistSingleProcess, AbortJobExitsNonZeroWithTheMessage) {
  SingleProcessCommunicator comm;
  EXPECT_EXIT((void)comm.abort_job("loss is NaN at step 7"), ::testing::ExitedWithCode(1),
              "error: rank 0 of 1: loss is NaN at step 7");
}

TEST(DistFactory, SingleProcessWithoutALauncher) {
  // CTest does not run this binary under mpirun: auto picks one process,
  // without initializing MPI.
  if (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK")) GTEST_SKIP() << "under mpirun";
  auto comm = make_communicator();
  ASSERT_TRUE(comm.ok()) << comm.status().message();
  EXPECT_EQ((*comm)->size(), 1);
  EXPECT_EQ((*comm)->backend_name(), "single");
  CommunicatorOptions single;
  single.backend = CommunicatorOptions::Backend::kSingleProcess;
  auto forced = make_communicator(single);
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ((*forced)->rank(), 0);
}

}  // namespace
}  // namespace sc
