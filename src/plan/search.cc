#include "plan/search.h"

#include <algorithm>
#include <tuple>

#include "plan/input_ranges.h"

namespace sc::plan {
namespace {

std::vector<int64_t> choices(int64_t fixed, std::vector<int64_t> all) { return fixed > 0 ? std::vector<int64_t>{fixed} : all; }

// validate_layout's message, without its numbers: the rejection reason.
// Matched on the words of each message that no other message has (a flag
// name alone is not enough: "--tp x --pp x --cp = 16 is more than --gpus 8"
// names --cp and is not about the sequence).
std::string reason_of(const Status& status) {
  const std::string& msg = status.message();
  const auto has = [&](const char* words) { return msg.find(words) != std::string::npos; };
  if (has("does not divide num_attention_heads")) return "tp does not divide the attention heads";
  if (has("does not divide the MLP width")) return "tp does not divide the MLP width";
  if (has("num_key_value_heads")) return "tp and KV heads do not divide";
  if (has("is not --gpus")) return "tp x pp x cp does not divide the GPUs";
  if (has("is more than --gpus")) return "tp x pp x cp is more than the GPUs";
  if (has("more stages than")) return "more pipeline stages than layers";
  if (has("does not divide num_experts")) return "ep does not divide the experts";
  if (has("does not divide --dp")) return "ep does not divide dp x cp";
  if (has("--micro-batch")) return "global batch not divisible by dp x micro-batch";
  if (has("must split into 2 x cp")) return "cp does not split the sequence";
  return msg;
}

// 1, 2, 4, ... up to n, without overflowing however large n is.
std::vector<int64_t> powers_of_two_up_to(int64_t n) {
  std::vector<int64_t> out;
  for (int64_t p = 1; p <= n; p *= 2) {
    out.push_back(p);
    if (p > n / 2) break;
  }
  return out;
}

}  // namespace

Status validate_search_space(const PlanModel& model, const ClusterSpec& cluster, const RunSpec& run,
                             const SearchSpace& space) {
  SC_RETURN_IF_ERROR(check_integer("--gpus", cluster.num_gpus, kGpusRange));
  SC_RETURN_IF_ERROR(validate_run(run));
  for (auto [flag, value, range] : {std::tuple{"--tp", space.tp, kParallelDegreeRange},
                                    {"--pp", space.pp, kParallelDegreeRange},
                                    {"--vp", space.vp, kVirtualStagesRange},
                                    {"--ep", space.ep, kParallelDegreeRange},
                                    {"--cp", space.cp, kParallelDegreeRange},
                                    {"--micro-batch", space.micro_batch, kMicroBatchRange}}) {
    if (value != 0) SC_RETURN_IF_ERROR(check_integer(flag, value, range));
  }
  if (space.zero != -1) SC_RETURN_IF_ERROR(check_integer("--zero", space.zero, kZeroRange));
  if (space.tp > 0) SC_RETURN_IF_ERROR(validate_tp(model, cluster, space.tp));
  if (space.vp > 1 && space.pp <= 1)
    return Status::invalid("--vp {} needs --pp > 1 (interleaving a pipeline)", space.vp);
  if (space.pp > 0)
    SC_RETURN_IF_ERROR(validate_stages(model, space.pp, space.vp > 0 ? space.vp : 1, space.balance_pipeline));
  if (space.ep > 0) SC_RETURN_IF_ERROR(validate_ep(model, space.ep));
  if (space.cp > 0) SC_RETURN_IF_ERROR(validate_cp(run, space.cp));
  const int64_t sequences = run.global_batch_tokens / run.seq_len;
  if (space.micro_batch > 0 && sequences % space.micro_batch != 0)
    return Status::invalid("--micro-batch {} does not divide the {} sequences of --global-batch-tokens {}",
                           space.micro_batch, sequences, run.global_batch_tokens);
  return Status();
}

SearchResult search_layouts(const PlanModel& model, const ClusterSpec& cluster, const RunSpec& run,
                            const SearchSpace& space) {
  SearchResult result;
  const std::vector<int64_t> tps = powers_of_two_up_to(cluster.gpus_per_node);
  // Powers of two, and 3, 5, 6, 10, 12: clusters of 24,000 or 100,000 GPUs
  // only fill up with a factor of 3 or 5 somewhere.
  std::vector<int64_t> pps;
  for (int64_t p : {1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 32, 64, 128})
    if (p <= model.config.num_hidden_layers) pps.push_back(p);
  const std::vector<int64_t> eps = model.config.is_moe() ? powers_of_two_up_to(model.config.num_experts)
                                                         : std::vector<int64_t>{1};
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
