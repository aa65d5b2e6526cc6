#include "plan/pipeline.h"

#include <algorithm>

namespace sc::plan {

PipelineShape pipeline_shape(int64_t layers, int64_t pp, int64_t vp, bool balance) {
  PipelineShape s;
  s.pp = pp;
  s.vp = vp;
  if (pp <= 1) {
    s.first_layers = s.middle_layers = s.last_layers = layers;
    return s;
  }
  const int64_t slots = layers + (balance ? 2 : 0);
  const int64_t chunks = pp * vp;
  const int64_t per_rank = (slots + chunks - 1) / chunks * vp;
  s.middle_layers = pp > 2 ? per_rank : 0;
  s.first_layers = per_rank - (balance ? 1 : 0);
  s.last_layers = per_rank - (balance ? 1 : 0);
  return s;
}

double in_flight_chunks(const PipelineShape& s, int64_t rank, int64_t micro_batches) {
  const int64_t p = s.pp, v = s.vp, m = micro_batches;
  if (p <= 1) return 1;
  if (v <= 1) return static_cast<double>(std::min(m, p - rank));
  return static_cast<double>(std::min(m * v, 2 * (p - rank - 1) + (v - 1) * p + 1));
}

double pipeline_overhead_s(int64_t pp, int64_t vp, int64_t micro_batches, double micro_batch_s, double transfer_s,
                           bool async_transfers) {
  if (pp <= 1) return 0;
  const double p = static_cast<double>(pp), v = static_cast<double>(vp), m = static_cast<double>(micro_batches);
  const double fill_drain = (p - 1) / v * micro_batch_s;
  if (!async_transfers) return fill_drain;
  const double hops = vp > 1 ? 2 * (p * v - 1) : 2 * (p - 1) / p * m + 2 * (p - 2);
  return fill_drain + hops * transfer_s;
}

}  // namespace sc::plan
