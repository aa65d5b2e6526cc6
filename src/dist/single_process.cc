#include "dist/single_process.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sc {
namespace {

// Work is done when started; the state only marks the op as ours.
class DonePendingState final : public PendingOpState {};

Result<PendingOp> done_op(std::string description) {
  return PendingOp(std::move(description), std::make_unique<DonePendingState>());
}

void copy_floats(std::span<const float> from, float* to) {
  if (from.data() != to && !from.empty()) std::memmove(to, from.data(), from.size_bytes());
}

}  // namespace

Status SingleProcessCommunicator::all_reduce(std::span<float> data, CollectiveTimeout timeout) {
  return Status::ok_status();
}

Status SingleProcessCommunicator::reduce_scatter(std::span<const float> input, std::span<float> shard,
                                                 CollectiveTimeout timeout) {
  SC_RETURN_IF_ERROR(dist_checks::reduce_scatter_args(input, shard, 0, 1));
  copy_floats(input, shard.data());
  return Status::ok_status();
}

Status SingleProcessCommunicator::all_gather(std::span<const float> shard, std::span<float> output,
                                             CollectiveTimeout timeout) {
  SC_RETURN_IF_ERROR(dist_checks::all_gather_args(shard, output, 0, 1));
  copy_floats(shard, output.data());
  return Status::ok_status();
}

Status SingleProcessCommunicator::all_to_all_v(
    std::span<const float> send, std::span<const size_t> send_counts,
    std::span<const size_t> send_offsets, std::span<float> recv, std::span<const size_t> recv_counts,
    std::span<const size_t> recv_offsets, CollectiveTimeout timeout) {
  SC_RETURN_IF_ERROR(dist_checks::all_to_all_v_args(send.size(), send_counts, send_offsets,
                                                    recv.size(), recv_counts, recv_offsets, 1));
  if (send_counts[0] != recv_counts[0]) {
    return Status::invalid("all_to_all_v: rank 0 sends {} floats to itself but expects {}",
                           send_counts[0], recv_counts[0]);
  }
  copy_floats(send.subspan(send_offsets[0], send_counts[0]), recv.data() + recv_offsets[0]);
  return Status::ok_status();
}

Status SingleProcessCommunicator::broadcast(std::span<std::byte> data, int root,
                                            CollectiveTimeout timeout) {
  return dist_checks::root_arg(root, 1);
}

Status SingleProcessCommunicator::barrier(CollectiveTimeout timeout) { return Status::ok_status(); }

Result<PendingOp> SingleProcessCommunicator::start_all_reduce(std::span<float> data) {
  return done_op(fmt::format("all_reduce of {} floats", data.size()));
}

Result<PendingOp> SingleProcessCommunicator::start_reduce_scatter(std::span<const float> input,
                                                                  std::span<float> shard) {
  SC_RETURN_IF_ERROR(reduce_scatter(input, shard, CollectiveTimeout::zero()));
  return done_op(fmt::format("reduce_scatter of {} floats", input.size()));
}

Result<PendingOp> SingleProcessCommunicator::start_all_gather(std::span<const float> shard,
                                                              std::span<float> output) {
  SC_RETURN_IF_ERROR(all_gather(shard, output, CollectiveTimeout::zero()));
  return done_op(fmt::format("all_gather of {} floats", output.size()));
}

Result<bool> SingleProcessCommunicator::test(PendingOp& op) {
  SC_RETURN_IF_ERROR(wait(op, CollectiveTimeout::zero()));
  return true;
}

Status SingleProcessCommunicator::wait(PendingOp& op, CollectiveTimeout timeout) {
  if (!op.active()) return Status::invalid("wait: the operation is not active (never started or already waited for)");
  if (dynamic_cast<DonePendingState*>(op.state()) == nullptr) {
    return Status::invalid("wait: {} was started on another communicator", op.description());
  }
  op.finish();
  return Status::ok_status();
}

Status SingleProcessCommunicator::abort_job(const std::string& why) {
  std::fprintf(stderr, "error: rank 0 of 1: %s\n", why.c_str());
  std::fflush(stderr);
  std::exit(1);
}

}  // namespace sc
