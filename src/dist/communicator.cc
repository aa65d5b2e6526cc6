#include "dist/communicator.h"

#include <climits>
#include <cstdlib>

#include "dist/mpi_communicator.h"
#include "dist/single_process.h"

namespace sc {

ShardRange shard_range(size_t n, int rank, int size) {
  const size_t r = static_cast<size_t>(rank), p = static_cast<size_t>(size);
  return ShardRange{r * n / p, (r + 1) * n / p};
}

size_t padded_count(size_t n, size_t multiple) {
  if (multiple == 0) return n;
  return (n + multiple - 1) / multiple * multiple;
}

namespace dist_checks {

bool overlaps(std::span<const float> a, std::span<const float> b) {
  if (a.empty() || b.empty()) return false;
  return a.data() < b.data() + b.size() && b.data() < a.data() + a.size();
}

bool is_subrange(std::span<const float> whole, std::span<const float> part, ShardRange range) {
  return part.data() == whole.data() + range.begin && part.size() == range.count();
}

Status reduce_scatter_args(std::span<const float> input, std::span<const float> shard, int rank,
                           int size) {
  const size_t n = input.size(), p = static_cast<size_t>(size);
  if (n % p != 0) {
    return Status::invalid(
        "reduce_scatter: {} floats do not split into {} equal shards (pad the buffer to a "
        "multiple of the rank count: padded_count)",
        n, size);
  }
  if (shard.size() != n / p) {
    return Status::invalid("reduce_scatter: shard holds {} floats, expected {} ({} / {} ranks)",
                           shard.size(), n / p, n, size);
  }
  if (overlaps(input, shard) && !is_subrange(input, shard, shard_range(n, rank, size))) {
    return Status::invalid(
        "reduce_scatter: shard overlaps the input without being exactly rank {}'s range", rank);
  }
  return Status::ok_status();
}

Status all_gather_args(std::span<const float> shard, std::span<const float> output, int rank,
                       int size) {
  const size_t n = output.size(), p = static_cast<size_t>(size);
  if (n % p != 0) {
    return Status::invalid(
        "all_gather: {} floats do not split into {} equal shards (pad the buffer to a multiple "
        "of the rank count: padded_count)",
        n, size);
  }
  if (shard.size() != n / p) {
    return Status::invalid("all_gather: shard holds {} floats, expected {} ({} / {} ranks)",
                           shard.size(), n / p, n, size);
  }
  if (overlaps(output, shard) && !is_subrange(output, shard, shard_range(n, rank, size))) {
    return Status::invalid(
        "all_gather: shard overlaps the output without being exactly rank {}'s range", rank);
  }
  return Status::ok_status();
}

static Status check_layout(const char* side, size_t len, std::span<const size_t> counts,
                           std::span<const size_t> offsets, int size) {
  if (counts.size() != static_cast<size_t>(size) || offsets.size() != static_cast<size_t>(size)) {
    return Status::invalid("all_to_all_v: {} counts and {} offsets given, expected {} (one per rank)",
                           counts.size(), offsets.size(), size);
  }
  for (int j = 0; j < size; ++j) {
    if (counts[j] > static_cast<size_t>(INT_MAX) || offsets[j] > static_cast<size_t>(INT_MAX)) {
      return Status::invalid("all_to_all_v: {} count or offset for rank {} exceeds INT_MAX", side, j);
    }
    if (offsets[j] + counts[j] > len) {
      return Status::invalid(
          "all_to_all_v: {} part for rank {} ([{}, {})) runs past the {}-float buffer", side, j,
          offsets[j], offsets[j] + counts[j], len);
    }
  }
  return Status::ok_status();
}

Status all_to_all_v_args(size_t send_len, std::span<const size_t> send_counts,
                         std::span<const size_t> send_offsets, size_t recv_len,
                         std::span<const size_t> recv_counts, std::span<const size_t> recv_offsets,
                         int size) {
  SC_RETURN_IF_ERROR(check_layout("send", send_len, send_counts, send_offsets, size));
  return check_layout("recv", recv_len, recv_counts, recv_offsets, size);
}

Status root_arg(int root, int size) {
  if (root < 0 || root >= size) return Status::invalid("broadcast: root {} is not a rank of 0..{}", root, size - 1);
  return Status::ok_status();
}

}  // namespace dist_checks

Result<std::unique_ptr<Communicator>> make_communicator(const CommunicatorOptions& options) {
  using Backend = CommunicatorOptions::Backend;
  if (options.backend == Backend::kSingleProcess) {
    return std::unique_ptr<Communicator>(std::make_unique<SingleProcessCommunicator>());
  }
  if (options.backend == Backend::kAuto && !mpi_already_initialized() && !launched_by_mpi_launcher()) {
    return std::unique_ptr<Communicator>(std::make_unique<SingleProcessCommunicator>());
  }
  SC_ASSIGN_OR_RETURN(auto mpi, MpiCommunicator::create(options.deterministic));
  return std::unique_ptr<Communicator>(std::move(mpi));
}

}  // namespace sc
