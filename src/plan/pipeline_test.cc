#include "plan/pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace sc::plan {
namespace {

TEST(PlanPipeline, LlamaBalanceLeavesOneLayerChunksAndLighterEnds) {
  // 126 layers + embedding + loss = 128 slots = 16 ranks x 8 chunks of 1.
  const PipelineShape s = pipeline_shape(126, 16, 8, /*balance=*/true);
  EXPECT_EQ(s.first_layers, 7);
  EXPECT_EQ(s.middle_layers, 8);
  EXPECT_EQ(s.last_layers, 7);
  const PipelineShape plain = pipeline_shape(96, 16, 1, false);
  EXPECT_EQ(plain.first_layers, 6);
  EXPECT_EQ(plain.last_layers, 6);
}

TEST(PlanPipeline, InFlightMicroBatchesFollowTheSchedule) {
  const PipelineShape one_f_one_b = pipeline_shape(96, 16, 1, false);
  EXPECT_EQ(in_flight_chunks(one_f_one_b, 0, 192), 16);  // first stage: p micro-batches
  EXPECT_EQ(in_flight_chunks(one_f_one_b, 15, 192), 1);  // last stage: one
  EXPECT_EQ(in_flight_chunks(one_f_one_b, 0, 4), 4);     // fewer micro-batches than stages
  // Interleaved: 2(p-1) + (v-1)p + 1 chunks, i.e. p (1 + (p-1)/(pv)) stages'
  // worth (Korthikanti et al. 2022) ...
  const PipelineShape interleaved = pipeline_shape(128, 16, 2, false);
  EXPECT_EQ(in_flight_chunks(interleaved, 0, 1000), 2 * 15 + 16 + 1);
  // ... but never more than the step's m x v chunks.
  EXPECT_EQ(in_flight_chunks(interleaved, 0, 16), 32);
}

// Megatron's (interleaved) 1F1B order on every rank, run as events: an
// operation starts when its rank is free and its input has arrived,
// `transfer` after the operation producing it ended. Returns the step time.
double simulate_pipeline(int p, int v, int m, double forward, double backward, double transfer) {
  struct Op {
    bool fwd;
    int chunk, mb;
  };
  const int total = m * v;
  auto fwd_op = [&](int k) { return Op{true, (k / p) % v, (k / (p * v)) * p + k % p}; };
  auto bwd_op = [&](int k) {
    Op op = fwd_op(k);
    return Op{false, v - 1 - op.chunk, op.mb};
  };
  std::vector<std::vector<Op>> order(p);
  for (int r = 0; r < p; ++r) {
    const int warmup = std::min(total, v == 1 ? p - r - 1 : 2 * (p - r - 1) + (v - 1) * p);
    for (int k = 0; k < warmup; ++k) order[r].push_back(fwd_op(k));
    for (int i = 0; i < total - warmup; ++i) order[r].push_back(fwd_op(warmup + i)), order[r].push_back(bwd_op(i));
    for (int i = total - warmup; i < total; ++i) order[r].push_back(bwd_op(i));
  }
  auto key = [&](bool fwd, int chunk, int mb, int rank) {
    return ((fwd ? 0 : 1) * v + chunk) * (m * p) + mb * p + rank;
  };
  std::vector<double> end(static_cast<size_t>(2 * v * m * p), -1);
  std::vector<size_t> next(p, 0);
  std::vector<double> clock(p, 0);
  for (bool moved = true; moved;) {
    moved = false;
    for (int r = 0; r < p; ++r) {
      while (next[r] < order[r].size()) {
        const Op op = order[r][next[r]];
        // Forward input: the previous rank's same chunk, or the last rank's previous chunk.
        // Backward input: the next rank's same chunk, or the first rank's next chunk; and its own forward.
        std::vector<std::pair<int, double>> inputs;
        if (op.fwd) {
          if (r > 0) inputs.push_back({key(true, op.chunk, op.mb, r - 1), transfer});
          else if (op.chunk > 0) inputs.push_back({key(true, op.chunk - 1, op.mb, p - 1), transfer});
        } else {
          inputs.push_back({key(true, op.chunk, op.mb, r), 0.0});
          if (r < p - 1) inputs.push_back({key(false, op.chunk, op.mb, r + 1), transfer});
          else if (op.chunk < v - 1) inputs.push_back({key(false, op.chunk + 1, op.mb, 0), transfer});
        }
        double start = clock[r];
        bool ready = true;
        for (const auto& [k, delay] : inputs) {
          if (end[static_cast<size_t>(k)] < 0) ready = false;
          else start = std::max(start, end[static_cast<size_t>(k)] + delay);
        }
        if (!ready) break;
        clock[r] = start + (op.fwd ? forward : backward);
        end[static_cast<size_t>(key(op.fwd, op.chunk, op.mb, r))] = clock[r];
        ++next[r];
        moved = true;
      }
    }
  }
  for (int r = 0; r < p; ++r) EXPECT_EQ(next[r], order[r].size()) << "the schedule deadlocked";
  return *std::max_element(clock.begin(), clock.end());
}

TEST(PlanPipeline, OverheadMatchesAnEventSimulationOfTheSchedule) {
  struct Case {
    int p, v, m;
    double forward, backward, transfer;
  };
  // Llama 3 at 16,384 and 8,192 GPUs (one-layer chunks), NVIDIA's 405B
  // layout, transfers as long as a chunk's forward, no transfer time; then
  // plain 1F1B, where the closed form is within one transfer.
  for (const Case& c : {Case{16, 8, 16, 14, 28, 0.9}, Case{16, 8, 32, 14, 28, 0.9}, Case{9, 7, 63, 20, 40, 0.5},
                        Case{8, 4, 8, 5, 10, 5}, Case{2, 2, 4, 3, 6, 0}, Case{4, 1, 12, 10, 20, 1},
                        Case{16, 1, 64, 10, 20, 0.5}, Case{3, 1, 7, 10, 20, 2}, Case{8, 1, 4, 10, 20, 1}}) {
    const double micro_batch = c.v * (c.forward + c.backward);
    const double simulated = simulate_pipeline(c.p, c.v, c.m, c.forward, c.backward, c.transfer);
    const double modelled = c.m * micro_batch + pipeline_overhead_s(c.p, c.v, c.m, micro_batch, c.transfer, true);
    const double tolerance = c.v > 1 ? 1e-9 * modelled : c.transfer;
    EXPECT_NEAR(simulated, modelled, tolerance) << "p " << c.p << " v " << c.v << " m " << c.m;
  }
  // Blocking transfers sit inside the micro-batch time: nothing is added.
  EXPECT_DOUBLE_EQ(pipeline_overhead_s(16, 8, 16, 42, 0.9, false), 15.0 / 8 * 42);
}

TEST(PlanPipeline, EveryLayerHasAPlaceAndNoRankMoreThanItsShare) {
  for (int64_t layers : {1, 7, 32, 96, 126})
    for (int64_t pp : {1, 2, 3, 4, 8, 16})
      for (int64_t vp : {1, 2, 4})
        for (bool balance : {false, true}) {
          if (pp == 1 && (vp > 1 || balance)) continue;
          const int64_t slots = layers + (balance && pp > 1 ? 2 : 0);
          if (pp * vp > slots) continue;  // validate_layout refuses these
          const PipelineShape s = pipeline_shape(layers, pp, vp, balance);
          if (pp == 1) {
            EXPECT_EQ(s.first_layers, layers);
            continue;
          }
          // Ranks are filled up to ceil(slots / chunks) per chunk; the first
          // and last give a slot each to the embedding and the loss.
          const int64_t per_rank = (slots + pp * vp - 1) / (pp * vp) * vp;
          const int64_t placed = s.first_layers + (pp - 2) * s.middle_layers + s.last_layers;
          EXPECT_GE(placed, layers) << layers << " layers, pp " << pp << " vp " << vp << " balance " << balance;
          EXPECT_LE(std::max({s.first_layers, s.middle_layers, s.last_layers}), per_rank);
          if (pp == 2) {
            EXPECT_EQ(s.middle_layers, 0);
          }
        }
}

TEST(PlanPipeline, NoPipelineNoOverhead) {
  EXPECT_EQ(pipeline_overhead_s(1, 1, 64, 10.0, 1.0, true), 0);
  EXPECT_EQ(in_flight_chunks(pipeline_shape(32, 1, 1, false), 0, 64), 1);
}

}  // namespace
}  // namespace sc::plan
