// Communicator over MPI (OpenMPI from Debian): one rank per process, started by
// mpirun or srun; rank and size come from MPI_COMM_WORLD. Collectives run on a
// duplicate of MPI_COMM_WORLD as non-blocking MPI calls polled with MPI_Test
// against a deadline, so nothing waits forever. MPI is initialized with
// MPI_THREAD_FUNNELED: only the thread that created the communicator calls it
// (ThreadPool workers never do).
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace sc {

// True when MPI_Init has run in this process (and MPI is not finalized).
bool mpi_already_initialized();
// True when a launcher that starts MPI ranks (mpirun, srun, hydra) started this
// process. Only decides whether to initialize MPI; rank and size come from MPI.
bool launched_by_mpi_launcher();

class MpiCommunicator final : public Communicator {
 public:
  // Initializes MPI if needed (finalized again when the last MpiCommunicator
  // dies, unless a collective timed out).
  static Result<std::unique_ptr<MpiCommunicator>> create(bool deterministic);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend_name() const override;
  bool deterministic() const override { return deterministic_; }

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

  struct Impl;  // MPI handles and scratch buffers; keeps <mpi.h> out of this header

 private:
  MpiCommunicator(std::unique_ptr<Impl> impl, int rank, int size, bool deterministic);
  Status run_blocking(Result<PendingOp> started, CollectiveTimeout timeout);

  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int size_ = 1;
  bool deterministic_ = true;
};

}  // namespace sc
