#include "plan/html_report.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "core/markup_escape.h"
#include "plan/svg_chart.h"
#include "plan/text_report.h"

namespace sc::plan {
namespace {

constexpr const char* kStyle = R"(body{font-family:sans-serif;max-width:760px;margin:24px auto;color:#222;line-height:1.45}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #ccc;border-radius:6px;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:20px}.bad{color:#b00}.small{font-size:12px;color:#555}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.grid{display:flex;flex-wrap:wrap;gap:8px})";

std::string card(const std::string& label, const std::string& value, bool bad = false) {
  return fmt::format("<div class=\"card\">{}<b{}>{}</b></div>\n", markup_escape(label), bad ? " class=\"bad\"" : "",
                     markup_escape(value));
}

std::string days_text(double days) { return days < 2 ? fmt::format("{:.1f} hours", days * 24) : fmt::format("{:.1f} days", days); }

std::string summary_sentences(const Plan& p) {
  const auto& r = p.reliability;
  std::string s = fmt::format(
      "Training <b>{}</b> ({:.0f}B parameters, {:.0f}B active per token) on <b>{:.3g} tokens</b> with {} of the {} "
      "{} GPUs of <b>{}</b> takes about <b>{}</b> of wall-clock time ({} of pure compute at {:.0f}% MFU). ",
      markup_escape(p.model), p.total_parameters / 1e9, p.active_parameters / 1e9, p.run.train_tokens, p.num_gpus,
      p.num_gpus + p.idle_gpus, markup_escape(p.gpu), markup_escape(p.cluster), days_text(p.effective_days),
      days_text(p.days), 100 * p.mfu);
  s += fmt::format(
      "The facility draws <b>{:.1f} MW</b> ({:.0f} MWh over the run). Expect about <b>{:.1f} interruptions per day</b> "
      "({:.0f} in all); with a checkpoint every {:.0f} minutes, <b>{:.1f}%</b> of the time is useful training "
      "(goodput). ",
      p.facility_power_mw, p.energy_mwh, r.interruptions_per_day, r.expected_interruptions,
      r.checkpoint_interval_s / 60, 100 * r.goodput);
  s += p.memory.fits ? fmt::format("Each GPU needs {:.1f} GB of its {:.1f} GB.", p.memory.total_bytes / 1e9,
                                   p.memory.capacity_bytes / 1e9)
                     : fmt::format("<span class=\"bad\">This layout does not fit: each GPU would need {:.1f} GB of its "
                                   "{:.1f} GB.</span>",
                                   p.memory.total_bytes / 1e9, p.memory.capacity_bytes / 1e9);
  return "<p>" + s + "</p>\n";
}

std::string step_chart(const Plan& p) {
  const auto& st = p.step;
  return stacked_bar_svg({{"matmuls (GEMM)", st.gemm_s, "#1f77b4"},
                          {"attention", st.attention_s, "#aec7e8"},
                          {"elementwise", st.elementwise_s, "#9edae5"},
                          {"gradient accumulation", st.grad_accum_s, "#c7c7c7"},
                          {"tensor-parallel comm", st.tp_comm_s, "#ff7f0e"},
                          {"pipeline comm", st.pp_comm_s, "#ffbb78"},
                          {"expert all-to-all", st.ep_comm_s, "#d62728"},
                          {"context-parallel comm", st.cp_comm_s, "#ff9896"},
                          {"data-parallel comm", st.dp_comm_s, "#9467bd"},
                          {"pipeline bubble", st.bubble_s, "#7f7f7f"},
                          {"optimizer", st.optimizer_s, "#2ca02c"}},
                         "s");
}

std::string memory_chart(const Plan& p) {
  const auto& m = p.memory;
  return stacked_bar_svg({{"weights", m.weights_bytes / 1e9, "#1f77b4"},
                          {"gradients", m.grads_bytes / 1e9, "#ff7f0e"},
                          {"optimizer state", m.optimizer_bytes / 1e9, "#2ca02c"},
                          {"activations", m.activations_bytes / 1e9, "#d62728"},
                          {"buffers", m.buffers_bytes / 1e9, "#7f7f7f"}},
                         "GB", m.capacity_bytes / 1e9, fmt::format("capacity {:.0f} GB", m.capacity_bytes / 1e9));
}

std::string power_chart(const Plan& p) {
  return stacked_bar_svg({{"GPUs", p.power.gpus_mw, "#1f77b4"},
                          {"rest of the nodes", p.power.node_rest_mw, "#aec7e8"},
                          {"network and storage", p.power.network_storage_mw, "#ff7f0e"},
                          {"cooling and conversion (PUE)", p.power.cooling_mw, "#9467bd"}},
                         "MW");
}

std::string scaling_charts(const std::vector<SweepPoint>& sweep) {
  std::vector<double> gpus, tokens, mfu, mw, failures;
  for (const auto& pt : sweep) {
    gpus.push_back(static_cast<double>(pt.gpus));
    const double nan = std::numeric_limits<double>::quiet_NaN();
    tokens.push_back(pt.best ? pt.best->tokens_per_s / 1e6 : nan);
    mfu.push_back(pt.best ? 100 * pt.best->mfu : nan);
    mw.push_back(pt.best ? pt.best->facility_power_mw : nan);
    failures.push_back(pt.best ? pt.best->reliability.interruptions_per_day : nan);
  }
  std::string out = "<div class=\"grid\">\n";
  out += line_chart_svg("Throughput", gpus, tokens, "GPUs in the cluster", "million tokens/s", true);
  out += line_chart_svg("MFU", gpus, mfu, "GPUs in the cluster", "% of bf16 peak", true);
  out += line_chart_svg("Facility power", gpus, mw, "GPUs in the cluster", "MW", true);
  out += line_chart_svg("Interruptions", gpus, failures, "GPUs in the cluster", "per day", true);
  return out + "</div>\n";
}

std::string sweep_table(const std::vector<SweepPoint>& sweep) {
  std::string out = "<table><tr><th>GPUs</th><th>used</th><th>best layout</th><th>tokens/s</th><th>MFU</th>"
                    "<th>days</th><th>MW</th><th>interruptions/day</th><th>goodput</th></tr>\n";
  for (const auto& pt : sweep) {
    if (!pt.best) {
      out += fmt::format("<tr><td>{}</td><td colspan=\"8\">{}</td></tr>\n", pt.gpus, markup_escape(pt.why_none));
      continue;
    }
    const Plan& p = *pt.best;
    out += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3g}</td><td>{:.1f}%</td><td>{:.1f}</td><td>{:.1f}</td>"
        "<td>{:.1f}</td><td>{:.1f}%</td></tr>\n",
        pt.gpus, p.num_gpus, markup_escape(layout_text(p.layout)), p.tokens_per_s, 100 * p.mfu, p.effective_days,
        p.facility_power_mw, p.reliability.interruptions_per_day, 100 * p.reliability.goodput);
  }
  return out + "</table>\n";
}

std::string details_table(const Plan& p) {
  const auto& r = p.reliability;
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"layout", layout_text(p.layout)},
      {"software", p.layout.software.name + (p.layout.balance_pipeline ? ", balanced pipeline" : "")},
      {"micro-batches per step", std::to_string(p.micro_batches)},
      {"sequence length / batch", fmt::format("{} tokens / {:.2f}M tokens", p.run.seq_len, p.run.global_batch_tokens / 1e6)},
      {"step time", fmt::format("{:.3f} s", p.step.step_s)},
      {"tokens per second", fmt::format("{:.3g}", p.tokens_per_s)},
      {"model TFLOP/s per GPU", fmt::format("{:.0f} ({:.0f} counting recomputation)", p.model_tflops_per_gpu, p.hardware_tflops_per_gpu)},
      {"GPU-hours / cost", fmt::format("{:.3g} / ${:.3g}", p.gpu_hours, p.cost_usd)},
      {"job MTBF", fmt::format("{:.2f} h", r.job_mtbf_s / 3600)},
      {"checkpoint", fmt::format("{:.0f} GB, written in {:.1f} s every {:.0f} s", r.checkpoint_bytes / 1e9,
                                 r.checkpoint_write_s, r.checkpoint_interval_s)},
  };
  std::string out = "<table>\n";
  for (const auto& [k, v] : rows) out += fmt::format("<tr><td>{}</td><td>{}</td></tr>\n", markup_escape(k), markup_escape(v));
  return out + "</table>\n";
}

}  // namespace

std::string render_html_report(const Plan& p, const std::vector<SweepPoint>& sweep) {
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>supercluster plan: {} on {}</title>\n"
      "<style>{}</style></head><body>\n<h1>Training {} on {}</h1>\n",
      markup_escape(p.model), markup_escape(p.cluster), kStyle, markup_escape(p.model), markup_escape(p.cluster));
  html += summary_sentences(p);
  html += "<div class=\"cards\">\n";
  html += card("time to train", days_text(p.effective_days));
  html += card("facility power", fmt::format("{:.1f} MW", p.facility_power_mw));
  html += card("MFU", fmt::format("{:.1f}%", 100 * p.mfu));
  html += card("interruptions per day", fmt::format("{:.1f}", p.reliability.interruptions_per_day));
  html += card("goodput", fmt::format("{:.1f}%", 100 * p.reliability.goodput));
  html += card("memory per GPU", fmt::format("{:.1f} / {:.0f} GB", p.memory.total_bytes / 1e9, p.memory.capacity_bytes / 1e9),
               !p.memory.fits);
  html += "</div>\n";
  html += "<h2>Where one training step's time goes</h2>\n";
  html += fmt::format("<p>One step ({:.2f}M tokens) takes {:.3f} s on the slowest pipeline stage. Communication that "
                      "overlaps compute is not shown; what is shown waits.</p>\n",
                      p.run.global_batch_tokens / 1e6, p.step.step_s);
  html += step_chart(p);
  html += "<h2>Memory on each GPU</h2>\n";
  html += fmt::format("<p>The pipeline rank that needs the most (rank {}); the red mark is the GPU's memory.</p>\n",
                      p.memory.pipeline_rank);
  html += memory_chart(p);
  if (!sweep.empty()) {
    html += "<h2>Scaling: the same run on clusters of other sizes</h2>\n";
    html += "<p>For each size, the fastest layout that fits. Throughput stops growing once the global batch cannot "
            "be split over more data-parallel replicas (the other GPUs stay idle); failures grow with every GPU "
            "added.</p>\n";
    html += scaling_charts(sweep);
    html += sweep_table(sweep);
  }
  html += "<h2>Power</h2>\n";
  html += fmt::format("<p>{:.1f} MW at the facility for {} GPUs: IT power {:.1f} MW times the PUE.</p>\n",
                      p.facility_power_mw, p.num_gpus + p.idle_gpus, p.it_power_mw);
  html += power_chart(p);
  html += "<h2>Details</h2>\n";
  html += details_table(p);
  html += "<p class=\"small\">MFU = model FLOP/s (6 x active parameters + attention, PaLM convention, from "
          "model/counts.h) / (GPUs x dense bf16 peak). Formulas, constants and their sources: docs/plan.md; accuracy "
          "against published runs: docs/plan_validation.md. Generated by <code>supercluster plan</code>.</p>\n";
  html += "</body></html>\n";
  return html;
}

}  // namespace sc::plan
