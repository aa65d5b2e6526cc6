#include "plan/cost_model.h"

#include <fmt/format.h>

#include <optional>

#include "model/counts.h"
#include "plan/gpu_share.h"
#include "plan/input_ranges.h"
#include "plan/layer_time.h"
#include "plan/memory_model.h"
#include "plan/pipeline.h"
#include "plan/reliability.h"
#include "plan/step_time.h"

namespace sc::plan {

std::string recompute_name(Recompute recompute) {
  switch (recompute) {
    case Recompute::kNone: return "none";
    case Recompute::kSelective: return "selective";
    case Recompute::kFull: return "full";
  }
  return "?";
}

Result<Recompute> parse_recompute(const std::string& name) {
  if (name == "none") return Recompute::kNone;
  if (name == "selective") return Recompute::kSelective;
  if (name == "full") return Recompute::kFull;
  return Status::invalid("--recompute must be none, selective or full (got {})", quote_input(name));
}

namespace {

// The largest divisor of n that is at most limit (n, limit >= 1). Divisors
// come in pairs i <= sqrt(n) <= n / i; walking i up meets the large ones in
// decreasing order, so this takes at most sqrt(n) steps, however large the
// limit (a count-down from the limit took one step per GPU).
int64_t largest_divisor_at_most(int64_t n, int64_t limit) {
  if (limit >= n) return n;
  int64_t best = 1;
  for (int64_t i = 1; i <= n / i; ++i) {
    if (n % i != 0) continue;
    if (n / i <= limit) return n / i;
    if (i <= limit) best = i;
  }
  return best;
}

// a x b, or nothing when that overflows.
std::optional<int64_t> product(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

}  // namespace

Status validate_run(const RunSpec& run) {
  SC_RETURN_IF_ERROR(check_integer("--seq-len", run.seq_len, kSeqLenRange));
  SC_RETURN_IF_ERROR(check_integer("--global-batch-tokens", run.global_batch_tokens, kGlobalBatchTokensRange));
  SC_RETURN_IF_ERROR(check_number("--train-tokens", run.train_tokens, kTrainTokensRange));
  if (run.global_batch_tokens % run.seq_len != 0)
    return Status::invalid("--global-batch-tokens {} is not a multiple of --seq-len {}", run.global_batch_tokens,
                           run.seq_len);
  return Status();
}

Status validate_tp(const PlanModel& model, const ClusterSpec& cluster, int64_t tp) {
  const ModelConfig& c = model.config;
  if (c.num_attention_heads % tp != 0)
    return Status::invalid("--tp {} does not divide num_attention_heads {}", tp, c.num_attention_heads);
  if (c.num_key_value_heads % tp != 0 && tp % c.num_key_value_heads != 0)
    return Status::invalid("--tp {} and num_key_value_heads {}: neither divides the other", tp, c.num_key_value_heads);
  if (model.mlp_width % tp != 0) return Status::invalid("--tp {} does not divide the MLP width {}", tp, model.mlp_width);
  // The tensor-parallel group's collectives run every layer: on NVLink.
  if (tp > cluster.gpus_per_node)
    return Status::invalid("--tp {} is more than the {} GPUs of a node: tensor parallelism stays inside a node's NVLink",
                           tp, cluster.gpus_per_node);
  return Status();
}

Status validate_stages(const PlanModel& model, int64_t pp, int64_t vp, bool balance_pipeline) {
  const int64_t layers = model.config.num_hidden_layers;
  const int64_t layer_slots = layers + (balance_pipeline && pp > 1 ? 2 : 0);
  const std::optional<int64_t> stages = product(pp, vp);
  if (!stages || *stages > layer_slots)
    return Status::invalid("--pp {} x --vp {} is more stages than num_hidden_layers {}", pp, vp, layers);
  if (vp > 1 && pp == 1) return Status::invalid("--vp {} needs --pp > 1 (interleaving a pipeline)", vp);
  return Status();
}

Status validate_ep(const PlanModel& model, int64_t ep) {
  const ModelConfig& c = model.config;
  if (ep > 1 && !c.is_moe())
    return Status::invalid("--ep {} needs a mixture-of-experts model ({} is dense)", ep, model.name);
  if (c.is_moe() && c.num_experts % ep != 0)
    return Status::invalid("--ep {} does not divide num_experts {}", ep, c.num_experts);
  return Status();
}

Status validate_cp(const RunSpec& run, int64_t cp) {
  if (cp > 1 && run.seq_len % (2 * cp) != 0)
    return Status::invalid("--cp {}: --seq-len {} must split into 2 x cp equal chunks", cp, run.seq_len);
  return Status();
}

Status validate_layout(const PlanModel& model, const ClusterSpec& cluster, const RunSpec& run, Layout* layout) {
  SC_RETURN_IF_ERROR(check_integer("--gpus", cluster.num_gpus, kGpusRange));
  SC_RETURN_IF_ERROR(check_integer("--tp", layout->tp, kParallelDegreeRange));
  SC_RETURN_IF_ERROR(check_integer("--pp", layout->pp, kParallelDegreeRange));
  SC_RETURN_IF_ERROR(check_integer("--vp", layout->vp, kVirtualStagesRange));
  SC_RETURN_IF_ERROR(check_integer("--ep", layout->ep, kParallelDegreeRange));
  SC_RETURN_IF_ERROR(check_integer("--cp", layout->cp, kParallelDegreeRange));
  SC_RETURN_IF_ERROR(check_integer("--micro-batch", layout->micro_batch, kMicroBatchRange));
  if (layout->dp != 0) SC_RETURN_IF_ERROR(check_integer("--dp", layout->dp, kParallelDegreeRange));
  SC_RETURN_IF_ERROR(check_integer("--zero", layout->zero, kZeroRange));
  SC_RETURN_IF_ERROR(validate_run(run));
  const int64_t sequences = run.global_batch_tokens / run.seq_len;
  // Each degree is at most 10^7, so tp x pp fits; x cp may not.
  const std::optional<int64_t> model_parallel = product(layout->tp * layout->pp, layout->cp);
  const bool derived_dp = layout->dp == 0;
  if (derived_dp) {
    // The largest data-parallel degree the GPUs allow that also divides the
    // batch; GPUs left over stay idle (spares) and are reported.
    if (!model_parallel || cluster.num_gpus < *model_parallel)
      return Status::invalid("--tp {} x --pp {} x --cp {} = {} is more than --gpus {}", layout->tp, layout->pp,
                             layout->cp, model_parallel ? fmt::format("{}", *model_parallel) : "more than 2^63",
                             cluster.num_gpus);
    if (sequences % layout->micro_batch != 0)
      return Status::invalid("--micro-batch {} does not divide the {} sequences of --global-batch-tokens {}",
                             layout->micro_batch, sequences, run.global_batch_tokens);
    layout->dp = largest_divisor_at_most(sequences / layout->micro_batch, cluster.num_gpus / *model_parallel);
  } else {
    const std::optional<int64_t> gpus = model_parallel ? product(*model_parallel, layout->dp) : std::nullopt;
    if (gpus != cluster.num_gpus)
      return Status::invalid("--tp {} x --pp {} x --dp {} x --cp {} = {} is not --gpus {}", layout->tp, layout->pp,
                             layout->dp, layout->cp, gpus ? fmt::format("{}", *gpus) : "more than 2^63",
                             cluster.num_gpus);
  }
  SC_RETURN_IF_ERROR(validate_tp(model, cluster, layout->tp));
  SC_RETURN_IF_ERROR(validate_stages(model, layout->pp, layout->vp, layout->balance_pipeline));
  SC_RETURN_IF_ERROR(validate_ep(model, layout->ep));
  if ((layout->dp * layout->cp) % layout->ep != 0)
    return Status::invalid("--ep {} does not divide --dp {} x --cp {}", layout->ep, layout->dp, layout->cp);
  SC_RETURN_IF_ERROR(validate_cp(run, layout->cp));
  if (sequences % layout->dp != 0 || (sequences / layout->dp) % layout->micro_batch != 0)
    return Status::invalid("--global-batch-tokens {} ({} sequences) is not a multiple of --dp {} x --micro-batch {}",
                           run.global_batch_tokens, sequences, layout->dp, layout->micro_batch);
  return Status();
}

ModelFacts model_facts(const PlanModel& model, int64_t seq_len) {
  return {count_parameters(model.config), flops_per_token(model.config, seq_len)};
}

namespace {

// What a plan says before any time or memory: names, GPUs, the layout with
// dp filled in, parameter counts and FLOPs per token.
Plan plan_header(const PlanModel& model, const ClusterSpec& cluster, const Layout& layout, const RunSpec& run,
                 const ModelFacts& facts) {
  Plan plan;
  plan.model = model.name;
  plan.cluster = cluster.name;
  plan.cluster_spec = cluster.to_json();
  plan.gpu = cluster.gpu.name;
  plan.num_gpus = layout.tp * layout.pp * layout.cp * layout.dp;
  plan.idle_gpus = cluster.num_gpus - plan.num_gpus;
  plan.layout = layout;
  plan.run = run;
  plan.micro_batches = micro_batches_per_step(layout, run);
  plan.total_parameters = static_cast<double>(facts.counts.total);
  plan.active_parameters = static_cast<double>(facts.counts.active);
  plan.model_flops_per_token = static_cast<double>(facts.flops.training);  // model_flops_per_token()
  return plan;
}

// Tokens/s, MFU and compute days from the step time. Hardware FLOPs add what
// recomputation repeats: a whole forward (full) or the attention core's
// forward (selective, unfused attention), as Megatron-LM 2021 counted.
void add_throughput(const PlanModel& model, const GpuSpec& gpu, const FlopsPerToken& f, Plan* plan) {
  const bool full = plan->layout.recompute == Recompute::kFull;
  const bool recompute_attention =
      full || (plan->layout.recompute == Recompute::kSelective && !model.flash_attention);
  const double n = static_cast<double>(plan->num_gpus);
  plan->tokens_per_s = static_cast<double>(plan->run.global_batch_tokens) / plan->step.step_s;
  const double model_flops = plan->model_flops_per_token * plan->tokens_per_s;
  plan->model_tflops_per_gpu = model_flops / n / 1e12;
  plan->mfu = model_flops / (n * gpu.bf16_flops);
  const double extra = full ? static_cast<double>(f.forward)
                            : recompute_attention ? static_cast<double>(f.forward_attention) : 0;
  plan->hardware_tflops_per_gpu = (plan->model_flops_per_token + extra) * plan->tokens_per_s / n / 1e12;
  plan->days = plan->run.train_tokens / plan->tokens_per_s / 86400;
}

}  // namespace

Result<Plan> plan_run(const PlanModel& model, const ClusterSpec& cluster, Layout layout, const RunSpec& run,
                      const ModelFacts* given_facts) {
  SC_RETURN_IF_ERROR(validate_layout(model, cluster, run, &layout));
  const ModelFacts facts = given_facts ? *given_facts : model_facts(model, run.seq_len);
  Plan plan = plan_header(model, cluster, layout, run, facts);
  const MicroBatchDims dims = micro_batch_dims(model, layout, run);
  const CommGroups groups = comm_groups(cluster, layout);
  const PipelineShape shape =
      pipeline_shape(model.config.num_hidden_layers, layout.pp, layout.vp, layout.balance_pipeline);
  const ParameterShare params = parameter_share(facts.counts, dims, shape);
  const StageWork work =
      stage_work(model, cluster, layout, dims, groups, params, cluster.slowest_gpu_factor(plan.num_gpus));
  plan.step = step_breakdown(cluster, layout, dims, groups, shape, params, work, plan.micro_batches);
  plan.memory = memory_per_gpu(model, cluster.gpu, layout, dims, groups, shape, params, plan.micro_batches);
  add_throughput(model, cluster.gpu, facts.flops, &plan);
  add_reliability_and_power(cluster, &plan);
  return plan;
}

nlohmann::json plan_to_json(const Plan& p) {
  const auto& st = p.step;
  const auto& mem = p.memory;
  const auto& r = p.reliability;
  return {
      {"model", p.model},
      {"cluster", p.cluster},
      {"cluster_spec", p.cluster_spec},
      {"gpu", p.gpu},
      {"num_gpus", p.num_gpus},
      {"idle_gpus", p.idle_gpus},
      {"layout",
       {{"tp", p.layout.tp}, {"pp", p.layout.pp}, {"vp", p.layout.vp}, {"dp", p.layout.dp}, {"ep", p.layout.ep},
        {"cp", p.layout.cp}, {"zero", p.layout.zero}, {"micro_batch", p.layout.micro_batch},
        {"recompute", recompute_name(p.layout.recompute)}, {"overlap_dp", p.layout.software.overlap_dp},
        {"balance_pipeline", p.layout.balance_pipeline}, {"software", p.layout.software.name},
        {"micro_batches", p.micro_batches}}},
      {"seq_len", p.run.seq_len},
      {"global_batch_tokens", p.run.global_batch_tokens},
      {"train_tokens", p.run.train_tokens},
      {"total_parameters", p.total_parameters},
      {"active_parameters", p.active_parameters},
      {"model_flops_per_token", p.model_flops_per_token},
      {"step_time_s", st.step_s},
      {"step_breakdown_s",
       {{"gemm", st.gemm_s}, {"attention", st.attention_s}, {"elementwise", st.elementwise_s},
        {"grad_accum", st.grad_accum_s}, {"tp_comm", st.tp_comm_s}, {"pp_comm", st.pp_comm_s}, {"ep_comm", st.ep_comm_s}, {"cp_comm", st.cp_comm_s},
        {"dp_comm", st.dp_comm_s}, {"bubble", st.bubble_s}, {"optimizer", st.optimizer_s}}},
      {"tokens_per_s", p.tokens_per_s},
      {"mfu", p.mfu},
      {"model_tflops_per_gpu", p.model_tflops_per_gpu},
      {"hardware_tflops_per_gpu", p.hardware_tflops_per_gpu},
      {"memory_per_gpu_bytes", mem.total_bytes},
      {"memory_breakdown_bytes",
       {{"weights", mem.weights_bytes}, {"grads", mem.grads_bytes}, {"optimizer", mem.optimizer_bytes},
        {"activations", mem.activations_bytes}, {"buffers", mem.buffers_bytes}, {"capacity", mem.capacity_bytes},
        {"pipeline_rank", mem.pipeline_rank}}},
      {"fits", mem.fits},
      {"days", p.days},
      {"effective_days", p.effective_days},
      {"gpu_hours", p.gpu_hours},
      {"it_power_mw", p.it_power_mw},
      {"power_breakdown_mw",
       {{"gpus", p.power.gpus_mw}, {"node_rest", p.power.node_rest_mw},
        {"network_storage", p.power.network_storage_mw}, {"cooling", p.power.cooling_mw}}},
      {"facility_power_mw", p.facility_power_mw},
      {"energy_mwh", p.energy_mwh},
      {"cost_usd", p.cost_usd},
      {"expected_interruptions", r.expected_interruptions},
      {"interruptions_per_day", r.interruptions_per_day},
      {"job_mtbf_s", r.job_mtbf_s},
      {"checkpoint_bytes", r.checkpoint_bytes},
      {"checkpoint_write_s", r.checkpoint_write_s},
      {"checkpoint_interval_s", r.checkpoint_interval_s},
      {"goodput", r.goodput},
  };
}

}  // namespace sc::plan
