#include "plan/text_report.h"

#include <fmt/format.h>

namespace sc::plan {
namespace {

std::string gb(double bytes) { return fmt::format("{:.1f} GB", bytes / 1e9); }

}  // namespace

std::string layout_text(const Layout& l) {
  return fmt::format("TP{} PP{}{} DP{} CP{} EP{} mb{} zero{} recompute={}", l.tp, l.pp,
                     l.vp > 1 ? fmt::format(" (v{})", l.vp) : "", l.dp, l.cp, l.ep, l.micro_batch, l.zero,
                     recompute_name(l.recompute));
}

std::string format_plan(const Plan& p) {
  const auto& st = p.step;
  const auto& m = p.memory;
  const auto& r = p.reliability;
  std::string out = fmt::format("plan: {} on {} ({} x {}{})\n", p.model, p.cluster, p.num_gpus, p.gpu,
                                p.idle_gpus > 0 ? fmt::format(", {} idle", p.idle_gpus) : "");
  out += fmt::format("  layout       {}, {} micro-batches per step, software {}{}\n", layout_text(p.layout),
                     p.micro_batches, p.layout.software.name, p.layout.balance_pipeline ? ", balanced pipeline" : "");
  out += fmt::format("  run          seq {}, batch {:.2f}M tokens, {:.3g} training tokens, {:.1f}B params ({:.1f}B active)\n",
                     p.run.seq_len, static_cast<double>(p.run.global_batch_tokens) / 1e6, p.run.train_tokens,
                     p.total_parameters / 1e9, p.active_parameters / 1e9);
  out += fmt::format("  memory/GPU   {} of {} -> {}: weights {}, grads {}, optimizer {}, activations {}, buffers {}"
                     " (pipeline rank {})\n",
                     gb(m.total_bytes), gb(m.capacity_bytes), m.fits ? "fits" : "DOES NOT FIT", gb(m.weights_bytes),
                     gb(m.grads_bytes), gb(m.optimizer_bytes), gb(m.activations_bytes), gb(m.buffers_bytes),
                     m.pipeline_rank);
  out += fmt::format("  step         {:.3f} s: gemm {:.3f}, attention {:.3f}, elementwise {:.3f}, grad-accum {:.3f}, "
                     "tp {:.3f}, pp {:.3f}, ep {:.3f}, cp {:.3f}, dp {:.3f}, bubble {:.3f}, optimizer {:.3f}\n",
                     st.step_s, st.gemm_s, st.attention_s, st.elementwise_s, st.grad_accum_s, st.tp_comm_s,
                     st.pp_comm_s, st.ep_comm_s, st.cp_comm_s, st.dp_comm_s, st.bubble_s, st.optimizer_s);
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

std::string format_sweep(const std::vector<SweepPoint>& points) {
  std::string out = fmt::format("  {:>7} {:>7}  {:<54} {:>9} {:>6} {:>8} {:>7} {:>9} {:>8}\n", "GPUs", "used", "layout",
                                "tokens/s", "MFU", "days", "MW", "intr/day", "goodput");
  for (const auto& pt : points) {
    if (!pt.best) {
      out += fmt::format("  {:>7} {:>7}  {}\n", pt.gpus, "-", pt.why_none);
      continue;
    }
    const Plan& p = *pt.best;
    out += fmt::format("  {:>7} {:>7}  {:<54} {:>9.3g} {:>5.1f}% {:>8.1f} {:>7.1f} {:>9.1f} {:>7.1f}%\n", pt.gpus,
                       p.num_gpus, layout_text(p.layout), p.tokens_per_s, 100 * p.mfu, p.effective_days,
                       p.facility_power_mw, p.reliability.interruptions_per_day, 100 * p.reliability.goodput);
  }
  return out;
}

nlohmann::json sweep_to_json(const std::vector<SweepPoint>& points) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& pt : points) {
    nlohmann::json j = {{"gpus", pt.gpus}};
    if (pt.best) {
      j["plan"] = plan_to_json(*pt.best);
    } else {
      j["error"] = pt.why_none;
    }
    out.push_back(std::move(j));
  }
  return {{"sweep", out}};
}

std::string format_validation(const std::vector<ValidationRow>& rows) {
  std::string out = fmt::format("  {:<30} {:<30} {:>9} {:>8} {:>7}  {}\n", "run", "layout", "published", "planner",
                                "error", "source");
  for (const auto& row : rows) {
    const auto& r = row.run;
    out += fmt::format("  {:<30} {:<30} {:>9.0f} {:>8.0f} {:>+6.1f}%  {}\n", r.name,
                       fmt::format("TP{} PP{}{}{} DP{} {}", r.tp, r.pp, r.vp > 1 ? fmt::format(" v{}", r.vp) : "",
                                   r.cp > 1 ? fmt::format(" CP{}", r.cp) : "", r.dp, recompute_name(r.recompute)),
                       row.published_tflops_per_gpu, row.predicted_tflops_per_gpu, 100 * row.error, r.source);
  }
  return out;
}

nlohmann::json validation_to_json(const std::vector<ValidationRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : rows) {
    out.push_back({{"run", row.run.name},
                   {"source", row.run.source},
                   {"published_tflops_per_gpu", row.published_tflops_per_gpu},
                   {"planner_tflops_per_gpu", row.predicted_tflops_per_gpu},
                   {"convention", row.run.hardware_flops ? "hardware (recomputation counted)" : "model (MFU)"},
                   {"published_tokens_per_s_per_gpu", row.run.published_tokens_per_s_per_gpu > 0
                                                          ? nlohmann::json(row.run.published_tokens_per_s_per_gpu)
                                                          : nlohmann::json(nullptr)},
                   {"planner_tokens_per_s_per_gpu", row.plan.tokens_per_s / static_cast<double>(row.plan.num_gpus)},
                   {"error", row.error},
                   {"tolerance", row.run.tolerance},
                   {"plan", plan_to_json(row.plan)}});
  }
  return {{"validation", out}};
}

}  // namespace sc::plan
