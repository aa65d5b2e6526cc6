// The communicator of a job with one rank: collectives are copies or no-ops,
// but every argument is checked as the MPI implementation checks it, so a
// trainer bug shows up on one core before it shows up on a cluster.
#pragma once

#include "dist/communicator.h"

namespace sc {

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend_name() const override { return "single"; }
  // A sum over one rank is that rank's values: trivially fixed-order.
  bool deterministic() const override { return true; }

  Status all_reduce(std::span<float> data, CollectiveTimeout timeout) override;
  Status reduce_scatter(std::span<const float> input, std::span<float> shard,
                        CollectiveTimeout timeout) override;
  Status all_gather(std::span<const float> shard, std::span<float> output,
                    CollectiveTimeout timeout) override;
  Status all_to_all_v(std::span<const float> send, std::span<const size_t> send_counts,
                      std::span<const size_t> send_offsets, std::span<float> recv,
                      std::span<const size_t> recv_counts, std::span<const size_t> recv_offsets,
                      CollectiveTimeout timeout) override;
  Status broadcast(std::span<std::byte> data, int root, CollectiveTimeout timeout) override;
  Status barrier(CollectiveTimeout timeout) override;

  Result<PendingOp> start_all_reduce(std::span<float> data) override;
  Result<PendingOp> start_reduce_scatter(std::span<const float> input,
                                         std::span<float> shard) override;
  Result<PendingOp> start_all_gather(std::span<const float> shard,
                                     std::span<float> output) override;
  Result<bool> test(PendingOp& op) override;
  Status wait(PendingOp& op, CollectiveTimeout timeout) override;

  Status abort_job(const std::string& why) override;
};

}  // namespace sc
