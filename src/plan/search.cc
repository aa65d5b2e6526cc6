#include "plan/search.h"

#include <algorithm>

namespace sc::plan {
namespace {

std::vector<int64_t> choices(int64_t fixed, std::vector<int64_t> all) { return fixed > 0 ? std::vector<int64_t>{fixed} : all; }

// The first words of an error name the flag: that is the rejection reason.
std::string reason_of(const Status& status) {
  const std::string& msg = status.message();
  if (msg.rfind("--tp", 0) == 0 && msg.find("does not divide num_attention_heads") != std::string::npos)
    return "tp does not divide the attention heads";
  if (msg.find("MLP width") != std::string::npos) return "tp does not divide the MLP width";
  if (msg.find("num_key_value_heads") != std::string::npos) return "tp and KV heads do not divide";
  if (msg.find("is not --gpus") != std::string::npos || msg.find("does not divide --gpus") != std::string::npos)
    return "tp x pp x cp does not divide the GPUs";
  if (msg.find("stages than") != std::string::npos) return "more pipeline stages than layers";
  if (msg.find("num_experts") != std::string::npos) return "ep does not divide the experts";
  if (msg.find("--ep") != std::string::npos) return "ep does not divide dp x cp";
  if (msg.find("--micro-batch") != std::string::npos) return "global batch not divisible by dp x micro-batch";
  if (msg.find("--cp") != std::string::npos) return "cp does not split the sequence";
  return msg;
}

}  // namespace

SearchResult search_layouts(const PlanModel& model, const ClusterSpec& cluster, const RunSpec& run,
                            const SearchSpace& space) {
  SearchResult result;
  std::vector<int64_t> tps;
  for (int64_t t = 1; t <= cluster.gpus_per_node; t *= 2) tps.push_back(t);
  // Powers of two, and 3, 5, 6, 10, 12: clusters of 24,000 or 100,000 GPUs
  // only fill up with a factor of 3 or 5 somewhere.
  std::vector<int64_t> pps;
  for (int64_t p : {1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 32, 64, 128})
    if (p <= model.config.num_hidden_layers) pps.push_back(p);
  std::vector<int64_t> eps = {1};
  if (model.config.is_moe())
    for (int64_t e = 2; e <= model.config.num_experts; e *= 2) eps.push_back(e);
  const ModelFacts facts = model_facts(model, run.seq_len);
  const std::vector<Recompute> recomputes =
      space.recompute ? std::vector<Recompute>{*space.recompute}
                      : std::vector<Recompute>{Recompute::kNone, Recompute::kSelective, Recompute::kFull};
  for (int64_t tp : choices(space.tp, tps))
    for (int64_t pp : choices(space.pp, pps))
      for (int64_t vp : choices(space.vp, {1, 2, 4}))
        for (int64_t cp : choices(space.cp, {1, 2, 4, 8}))
          for (int64_t ep : choices(space.ep, eps))
            for (int64_t mb : choices(space.micro_batch, {1, 2, 4}))
              for (int64_t zero : space.zero >= 0 ? std::vector<int64_t>{space.zero} : std::vector<int64_t>{1, 3})
                for (Recompute rc : recomputes) {
                  if (vp > 1 && pp == 1) continue;     // interleaving needs a pipeline
                  if (zero == 3 && pp > 1) continue;   // FSDP with pipelines: not a layout people run
                  Layout layout;
                  layout.tp = tp, layout.pp = pp, layout.vp = vp, layout.cp = cp, layout.ep = ep;
                  layout.micro_batch = mb, layout.zero = zero, layout.recompute = rc;
                  layout.balance_pipeline = space.balance_pipeline, layout.software = space.software;
                  ++result.tried;
                  auto plan = plan_run(model, cluster, layout, run, &facts);
                  if (!plan.ok()) {
                    ++result.rejected[reason_of(plan.status())];
                    continue;
                  }
                  if (!plan->memory.fits) {
                    ++result.rejected["does not fit in GPU memory"];
                    if (!result.smallest_unfit || plan->memory.total_bytes < result.smallest_unfit->memory.total_bytes)
                      result.smallest_unfit = *plan;
                    continue;
                  }
                  result.fitting.push_back(std::move(*plan));
                }
  // Ranked by wall-clock days to train, failures included: on a big cluster
  // the layout that uses every GPU can lose more to interruptions than it
  // gains in speed.
  std::stable_sort(result.fitting.begin(), result.fitting.end(), [](const Plan& a, const Plan& b) {
    return a.effective_days != b.effective_days ? a.effective_days < b.effective_days : a.step.step_s < b.step.step_s;
  });
  return result;
}

}  // namespace sc::plan
