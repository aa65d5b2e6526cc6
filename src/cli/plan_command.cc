#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "core/file_util.h"
#include "model/counts.h"
#include "plan/cost_model.h"
#include "plan/hardware.h"
#include "plan/plan_model.h"
#include "plan/search.h"

namespace sc::cli {
namespace {

struct PlanFlags {
  std::string model = "grok-1";
  std::string cluster = "colossus-100k";
  std::string gpu;
  int64_t gpus = 0;
  int64_t tp = 0, pp = 0, vp = 0, dp = 0, ep = 0, cp = 0, micro_batch = 0, zero = -1;
  int64_t seq_len = 0;
  int64_t global_batch_tokens = 0;
  double train_tokens = 0;
  double gpu_hour_usd = -1;
  std::string recompute;
  bool json = false;
  bool search = false;
  bool no_overlap_dp = false;
  std::string sweep;
};

std::string gb(double bytes) { return fmt::format("{:.1f} GB", bytes / 1e9); }

std::string layout_text(const plan::Layout& l) {
  return fmt::format("TP{} PP{}{} DP{} CP{} EP{} mb{} zero{} recompute={}", l.tp, l.pp,
                     l.vp > 1 ? fmt::format(" (v{})", l.vp) : "", l.dp, l.cp, l.ep, l.micro_batch, l.zero,
                     plan::recompute_name(l.recompute));
}

std::string format_plan(const plan::Plan& p) {
  const auto& st = p.step;
  const auto& m = p.memory;
  const auto& r = p.reliability;
  std::string out = fmt::format("plan: {} on {} ({} x {}{})\n", p.model, p.cluster, p.num_gpus, p.gpu,
                                p.idle_gpus > 0 ? fmt::format(", {} idle", p.idle_gpus) : "");
  out += fmt::format("  layout       {}, {} micro-batches per step\n", layout_text(p.layout), p.micro_batches);
  out += fmt::format("  run          seq {}, batch {:.2f}M tokens, {:.3g} training tokens, {:.1f}B params ({:.1f}B active)\n",
                     p.run.seq_len, p.run.global_batch_tokens / 1e6, p.run.train_tokens, p.total_parameters / 1e9,
                     p.active_parameters / 1e9);
  out += fmt::format("  memory/GPU   {} of {} -> {}: weights {}, grads {}, optimizer {}, activations {}, buffers {}\n",
                     gb(m.total_bytes), gb(m.capacity_bytes), m.fits ? "fits" : "DOES NOT FIT", gb(m.weights_bytes),
                     gb(m.grads_bytes), gb(m.optimizer_bytes), gb(m.activations_bytes), gb(m.buffers_bytes));
  out += fmt::format("  step         {:.3f} s: gemm {:.3f}, attention {:.3f}, elementwise {:.3f}, tp {:.3f}, pp {:.3f}, "
                     "ep {:.3f}, cp {:.3f}, dp {:.3f}, bubble {:.3f}, optimizer {:.3f}\n",
                     st.step_s, st.gemm_s, st.attention_s, st.elementwise_s, st.tp_comm_s, st.pp_comm_s, st.ep_comm_s,
                     st.cp_comm_s, st.dp_comm_s, st.bubble_s, st.optimizer_s);
  out += fmt::format("  throughput   {:.3g} tokens/s, MFU {:.1f}%, {:.0f} model TFLOP/s/GPU ({:.0f} with recompute)\n",
                     p.tokens_per_s, 100 * p.mfu, p.model_tflops_per_gpu, p.hardware_tflops_per_gpu);
  out += fmt::format("  time         {:.1f} days of compute, {:.1f} effective days, {:.3g} GPU-hours, ${:.3g}\n", p.days,
                     p.effective_days, p.gpu_hours, p.cost_usd);
  out += fmt::format("  power        {:.1f} MW IT, {:.1f} MW facility, {:.0f} MWh\n", p.it_power_mw,
                     p.facility_power_mw, p.energy_mwh);
  out += fmt::format("  reliability  {:.1f} interruptions/day (job MTBF {:.2f} h), {:.0f} expected; checkpoint {} "
                     "written in {:.1f} s every {:.0f} s (Daly); goodput {:.1f}%\n",
                     r.interruptions_per_day, r.job_mtbf_s / 3600, r.expected_interruptions, gb(r.checkpoint_bytes),
                     r.checkpoint_write_s, r.checkpoint_interval_s, 100 * r.goodput);
  return out;
}

Status run_plan(const PlanFlags& f) {
  SC_ASSIGN_OR_RETURN(plan::PlanModel model, plan::resolve_plan_model(f.model));
  SC_ASSIGN_OR_RETURN(plan::ClusterSpec cluster, plan::resolve_cluster(f.cluster));
  if (!f.gpu.empty()) {
    SC_ASSIGN_OR_RETURN(cluster.gpu, plan::gpu_by_name(f.gpu));
  }
  if (f.gpus < 0) return Status::invalid("--gpus must be positive (got {})", f.gpus);
  if (f.gpus > 0) cluster.num_gpus = f.gpus;
  if (f.gpu_hour_usd >= 0) cluster.gpu_hour_usd = f.gpu_hour_usd;
  plan::RunSpec run;
  run.seq_len = f.seq_len != 0 ? f.seq_len : model.default_seq_len;
  // 16M tokens (2^24), Llama 3 405B's batch, unless given.
  run.global_batch_tokens = f.global_batch_tokens != 0 ? f.global_batch_tokens
                                                        : (int64_t{1} << 24) / run.seq_len * run.seq_len;
  // Chinchilla's 20 tokens per (active) parameter, unless given.
  run.train_tokens =
      f.train_tokens != 0 ? f.train_tokens : 20.0 * static_cast<double>(count_parameters(model.config).active);
  plan::SearchSpace space;
  space.tp = f.tp, space.pp = f.pp, space.vp = f.vp, space.ep = f.ep, space.cp = f.cp;
  space.micro_batch = f.micro_batch, space.zero = f.zero;
  if (!f.recompute.empty()) {
    SC_ASSIGN_OR_RETURN(plan::Recompute rc, plan::parse_recompute(f.recompute));
    space.recompute = rc;
  }
  for (auto [flag, v] : {std::pair{"--tp", f.tp}, {"--pp", f.pp}, {"--vp", f.vp}, {"--dp", f.dp}, {"--ep", f.ep},
                         {"--cp", f.cp}, {"--micro-batch", f.micro_batch}, {"--seq-len", run.seq_len},
                         {"--global-batch-tokens", run.global_batch_tokens}}) {
    if (v < 0) return Status::invalid("{} must be positive (got {})", flag, v);
  }
  if (f.gpus < 0) return Status::invalid("--gpus must be positive (got {})", f.gpus);
  if (f.train_tokens < 0) return Status::invalid("--train-tokens must be positive (got {})", f.train_tokens);

  const bool layout_given = f.tp || f.pp || f.dp || f.ep || f.cp;
  if (f.search || !layout_given) {
    plan::SearchResult result = plan::search_layouts(model, cluster, run, space);
    if (result.fitting.empty()) {
      std::string why;
      for (const auto& [reason, count] : result.rejected) why += fmt::format("\n  {} layouts: {}", count, reason);
      if (result.smallest_unfit) {
        const auto& p = *result.smallest_unfit;
        return Status::invalid(
            "no layout of {} fits on {} x {} ({} tried):{}\nsmallest memory found: {} per GPU with {} (capacity {}); "
            "it needs {:.0f}% more memory per GPU, or more GPUs for pipeline/tensor sharding, or a GPU with more HBM",
            model.name, cluster.num_gpus, cluster.gpu.name, result.tried, why, gb(p.memory.total_bytes),
            layout_text(p.layout), gb(p.memory.capacity_bytes),
            100 * (p.memory.total_bytes / p.memory.capacity_bytes - 1));
      }
      return Status::invalid("no valid layout of {} on {} GPUs ({} tried):{}", model.name, cluster.num_gpus,
                             result.tried, why);
    }
    if (f.search) {
      if (f.json) {
        nlohmann::json out = {{"ranked", nlohmann::json::array()}, {"rejected", result.rejected}, {"tried", result.tried}};
        for (size_t i = 0; i < result.fitting.size() && i < 20; ++i) out["ranked"].push_back(plan::plan_to_json(result.fitting[i]));
        fmt::print("{}\n", out.dump(2));
        return Status();
      }
      fmt::print("search: {} on {} x {}: {} layouts tried, {} fit\n", model.name, cluster.num_gpus, cluster.gpu.name,
                 result.tried, result.fitting.size());
      fmt::print("  {:>4}  {:<52} {:>9} {:>7} {:>9} {:>9}\n", "rank", "layout", "step s", "MFU", "mem GB", "days");
      for (size_t i = 0; i < result.fitting.size() && i < 10; ++i) {
        const auto& p = result.fitting[i];
        fmt::print("  {:>4}  {:<52} {:>9.3f} {:>6.1f}% {:>9.1f} {:>9.1f}\n", i + 1, layout_text(p.layout), p.step.step_s,
                   100 * p.mfu, p.memory.total_bytes / 1e9, p.days);
      }
      fmt::print("  rejected:\n");
      for (const auto& [reason, count] : result.rejected) fmt::print("    {:>6}  {}\n", count, reason);
      fmt::print("\nbest:\n");
    } else {
      fmt::print("no layout given: the fastest that fits (--search lists the others)\n");
    }
    const plan::Plan& best = result.fitting.front();
    fmt::print("{}", f.json ? plan::plan_to_json(best).dump(2) + "\n" : format_plan(best));
    return Status();
  }
  plan::Layout layout;
  layout.tp = f.tp ? f.tp : 1;
  layout.pp = f.pp ? f.pp : 1;
  layout.vp = f.vp ? f.vp : 1;
  layout.dp = f.dp;
  layout.ep = f.ep ? f.ep : 1;
  layout.cp = f.cp ? f.cp : 1;
  layout.micro_batch = f.micro_batch ? f.micro_batch : 1;
  layout.zero = f.zero >= 0 ? f.zero : 1;
  layout.recompute = space.recompute.value_or(plan::Recompute::kSelective);
  layout.overlap_dp = !f.no_overlap_dp;
  SC_ASSIGN_OR_RETURN(plan::Plan p, plan::plan_run(model, cluster, layout, run));
  fmt::print("{}", f.json ? plan::plan_to_json(p).dump(2) + "\n" : format_plan(p));
  return Status();
}

}  // namespace

CLI::App* add_plan_command(CLI::App& root, CommandRunner* runner) {
  auto f = std::make_shared<PlanFlags>();
  CLI::App* sub = root.add_subcommand("plan", "Plan a training run on a cluster: layout, memory, step time, MFU, "
                                              "days, MW, failures, goodput");
  sub->add_option("--model", f->model, "Model preset (gpt3-175b, megatron-1t, llama3-405b, grok-1, ...) or config.json")
      ->capture_default_str();
  sub->add_option("--cluster", f->cluster, "Cluster preset (colossus-100k, oracle-24k, selene-a100, llama3-h100) or .json")
      ->capture_default_str();
  sub->add_option("--gpu", f->gpu, "GPU type: a100-40gb, a100-80gb, h100-sxm, h200, b200 (default: the cluster's)");
  sub->add_option("--gpus", f->gpus, "GPUs to use (default: the cluster's)");
  sub->add_option("--tp", f->tp, "Tensor parallel size (with sequence parallelism)");
  sub->add_option("--pp", f->pp, "Pipeline stages");
  sub->add_option("--vp", f->vp, "Virtual stages per pipeline rank (interleaved schedule)");
  sub->add_option("--dp", f->dp, "Data parallel size (default: GPUs / (tp x pp x cp))");
  sub->add_option("--ep", f->ep, "Expert parallel size (MoE)");
  sub->add_option("--cp", f->cp, "Context parallel size");
  sub->add_option("--micro-batch", f->micro_batch, "Sequences per micro-batch");
  sub->add_option("--global-batch-tokens", f->global_batch_tokens, "Tokens per optimizer step (default 2^24)");
  sub->add_option("--seq-len", f->seq_len, "Sequence length (default: the model's)");
  sub->add_option("--recompute", f->recompute, "Activation recomputation: none, selective, full (default selective)");
  sub->add_option("--zero", f->zero, "ZeRO stage 0-3 over the data-parallel group (default 1)");
  sub->add_option("--train-tokens", f->train_tokens, "Tokens to train on (default 20 per active parameter)");
  sub->add_option("--gpu-hour-usd", f->gpu_hour_usd, "Price of a GPU-hour (default: the cluster's)");
  sub->add_flag("--no-overlap-dp", f->no_overlap_dp, "Data-parallel communication does not overlap compute (2021 Megatron)");
  sub->add_flag("--json", f->json, "Print JSON (keys in docs/plan.md)");
  sub->add_flag("--search", f->search, "Rank every valid layout; say why the others were rejected");
  *runner = [f]() { return run_plan(*f); };
  return sub;
}

}  // namespace sc::cli
