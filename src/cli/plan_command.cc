// `supercluster plan`: flags -> a model, a cluster, a run and a layout (or a
// search space), then one of: a plan, --search, --sweep, --validate,
// --calibrate; --html writes the report beside any of the first three.
#include <fmt/format.h>

#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/plan_calibrate.h"
#include "core/file_util.h"
#include "model/counts.h"
#include "plan/cost_model.h"
#include "plan/hardware.h"
#include "plan/html_report.h"
#include "plan/input_ranges.h"
#include "plan/plan_model.h"
#include "plan/search.h"
#include "plan/sweep.h"
#include "plan/text_report.h"
#include "plan/validation.h"

namespace sc::cli {
namespace {

struct PlanFlags {
  std::string model = "grok-1";
  std::string cluster = "colossus-100k";
  std::string gpu;
  // The numbers as typed, by flag, only those given: read_flags() reads
  // them into the fields below, each checked against its range.
  std::map<std::string, std::string> numbers;
  // Not given: 0 (-1 for zero and gpu_hour_usd, where 0 is a value).
  int64_t gpus = 0;
  int64_t tp = 0, pp = 0, vp = 0, dp = 0, ep = 0, cp = 0, micro_batch = 0, zero = -1;
  int64_t seq_len = 0;
  int64_t global_batch_tokens = 0;
  double train_tokens = 0;
  double gpu_hour_usd = -1;
  std::string recompute;
  std::string software = "current";
  bool json = false;
  bool search = false;
  bool no_overlap_dp = false;
  bool balance_pipeline = false;
  std::string sweep;
  std::string html;
  bool validate = false;
  bool calibrate = false;
  bool calibrate_worker = false;
};

// Every number flag, its field and its range (docs/plan.md, "Input ranges").
struct IntegerFlag {
  const char* name;
  int64_t PlanFlags::*field;
  plan::IntegerRange range;
};
const IntegerFlag kIntegerFlags[] = {
    {"--gpus", &PlanFlags::gpus, plan::kGpusRange},
    {"--tp", &PlanFlags::tp, plan::kParallelDegreeRange},
    {"--pp", &PlanFlags::pp, plan::kParallelDegreeRange},
    {"--vp", &PlanFlags::vp, plan::kVirtualStagesRange},
    {"--dp", &PlanFlags::dp, plan::kParallelDegreeRange},
    {"--ep", &PlanFlags::ep, plan::kParallelDegreeRange},
    {"--cp", &PlanFlags::cp, plan::kParallelDegreeRange},
    {"--micro-batch", &PlanFlags::micro_batch, plan::kMicroBatchRange},
    {"--global-batch-tokens", &PlanFlags::global_batch_tokens, plan::kGlobalBatchTokensRange},
    {"--seq-len", &PlanFlags::seq_len, plan::kSeqLenRange},
    {"--zero", &PlanFlags::zero, plan::kZeroRange},
};
struct NumberFlag {
  const char* name;
  double PlanFlags::*field;
  plan::NumberRange range;
};
const NumberFlag kNumberFlags[] = {
    {"--train-tokens", &PlanFlags::train_tokens, plan::kTrainTokensRange},
    {"--gpu-hour-usd", &PlanFlags::gpu_hour_usd, plan::kGpuHourUsdRange},
};

// A path or name longer than any file system takes is a mistake, and an
// error message must not repeat it.
constexpr size_t kMaxPathBytes = 4096;

// The sizes the HTML report's scaling curve uses when --sweep is not given.
const char* kDefaultSweep = "gpus=1024,4096,16384,100000";

Status read_flags(PlanFlags* f) {
  for (const auto& flag : kIntegerFlags) {
    const auto it = f->numbers.find(flag.name);
    if (it == f->numbers.end()) continue;
    SC_ASSIGN_OR_RETURN(f->*flag.field, plan::parse_integer_flag(flag.name, it->second, flag.range));
  }
  for (const auto& flag : kNumberFlags) {
    const auto it = f->numbers.find(flag.name);
    if (it == f->numbers.end()) continue;
    SC_ASSIGN_OR_RETURN(f->*flag.field, plan::parse_number_flag(flag.name, it->second, flag.range));
  }
  for (auto [flag, text] : {std::pair{"--model", &f->model}, {"--cluster", &f->cluster}, {"--html", &f->html}}) {
    if (text->size() > kMaxPathBytes)
      return Status::invalid("{} must be a name or a path of at most {} bytes (got {} bytes)", flag, kMaxPathBytes,
                             text->size());
  }
  return Status();
}

Status print_validation(bool json) {
  std::vector<plan::ValidationRow> rows;
  for (const auto& run : plan::published_runs()) {
    SC_ASSIGN_OR_RETURN(plan::ValidationRow row, plan::validate_run(run));
    rows.push_back(std::move(row));
  }
  if (json) {
    fmt::print("{}\n", plan::validation_to_json(rows).dump(2));
  } else {
    fmt::print("validation: planner vs published TFLOP/s per GPU (docs/plan_validation.md)\n{}",
               plan::format_validation(rows));
  }
  return Status();
}

// "no layout fits" with the smallest memory found and what it would take.
Status nothing_fits(const plan::PlanModel& model, const plan::ClusterSpec& cluster, const plan::SearchResult& result) {
  std::string why;
  for (const auto& [reason, count] : result.rejected) why += fmt::format("\n  {} layouts: {}", count, reason);
  if (result.smallest_unfit) {
    const auto& p = *result.smallest_unfit;
    return Status::invalid(
        "no layout of {} fits on {} x {} ({} tried):{}\nsmallest memory found: {:.1f} GB per GPU with {} (capacity "
        "{:.1f} GB); it needs {:.0f}% more memory per GPU, or more GPUs for pipeline/tensor sharding, or a GPU with "
        "more HBM",
        model.name, cluster.num_gpus, cluster.gpu.name, result.tried, why, p.memory.total_bytes / 1e9,
        plan::layout_text(p.layout), p.memory.capacity_bytes / 1e9,
        100 * (p.memory.total_bytes / p.memory.capacity_bytes - 1));
  }
  return Status::invalid("no valid layout of {} on {} GPUs ({} tried):{}", model.name, cluster.num_gpus, result.tried,
                         why);
}

void print_search(const plan::PlanModel& model, const plan::ClusterSpec& cluster, const plan::SearchResult& result,
                  bool json) {
  if (json) {
    nlohmann::json out = {{"ranked", nlohmann::json::array()}, {"rejected", result.rejected}, {"tried", result.tried}};
    for (size_t i = 0; i < result.fitting.size() && i < 20; ++i)
      out["ranked"].push_back(plan::plan_to_json(result.fitting[i]));
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("search: {} on {} x {}: {} layouts tried, {} fit\n", model.name, cluster.num_gpus, cluster.gpu.name,
             result.tried, result.fitting.size());
  fmt::print("  {:>4}  {:<58} {:>9} {:>7} {:>9} {:>9}\n", "rank", "layout", "step s", "MFU", "mem GB", "eff.days");
  for (size_t i = 0; i < result.fitting.size() && i < 10; ++i) {
    const auto& p = result.fitting[i];
    fmt::print("  {:>4}  {:<58} {:>9.3f} {:>6.1f}% {:>9.1f} {:>9.1f}\n", i + 1, plan::layout_text(p.layout),
               p.step.step_s, 100 * p.mfu, p.memory.total_bytes / 1e9, p.effective_days);
  }
  fmt::print("  rejected:\n");
  for (const auto& [reason, count] : result.rejected) fmt::print("    {:>6}  {}\n", count, reason);
  fmt::print("\nbest:\n{}", plan::format_plan(result.fitting.front()));
}

Status run_plan(const PlanFlags& f) {
  if (f.calibrate_worker) return run_allreduce_calibration_worker();
  if (f.validate) return print_validation(f.json);
  SC_ASSIGN_OR_RETURN(plan::ClusterSpec cluster, plan::resolve_cluster(f.cluster));
  if (!f.gpu.empty()) {
    SC_ASSIGN_OR_RETURN(cluster.gpu, plan::gpu_by_name(f.gpu));
  }
  if (f.gpus > 0) cluster.num_gpus = f.gpus;
  if (f.gpu_hour_usd >= 0) cluster.gpu_hour_usd = f.gpu_hour_usd;
  if (f.calibrate) return run_plan_calibrate(cluster, f.json);

  SC_ASSIGN_OR_RETURN(plan::PlanModel model, plan::resolve_plan_model(f.model));
  plan::RunSpec run;
  run.seq_len = f.seq_len != 0 ? f.seq_len : model.default_seq_len;
  if (f.seq_len == 0 && (run.seq_len < plan::kSeqLenRange.min || run.seq_len > plan::kSeqLenRange.max)) {
    return Status::invalid(
        "--seq-len must be given: the default of model {} (max_position_embeddings {}) is outside [{}, {}]",
        plan::quote_input(model.name), run.seq_len, plan::kSeqLenRange.min, plan::kSeqLenRange.max);
  }
  // 16M tokens (2^24), Llama 3 405B's batch, unless given.
  run.global_batch_tokens = f.global_batch_tokens != 0 ? f.global_batch_tokens
                                                        : (int64_t{1} << 24) / run.seq_len * run.seq_len;
  // Chinchilla's 20 tokens per (active) parameter, unless given.
  run.train_tokens =
      f.train_tokens != 0 ? f.train_tokens : 20.0 * static_cast<double>(count_parameters(model.config).active);

  plan::SearchSpace space;
  space.tp = f.tp, space.pp = f.pp, space.vp = f.vp, space.ep = f.ep, space.cp = f.cp;
  space.micro_batch = f.micro_batch, space.zero = f.zero;
  SC_ASSIGN_OR_RETURN(space.software, plan::software_stack(f.software));
  if (f.no_overlap_dp) space.software.overlap_dp = false;
  space.balance_pipeline = f.balance_pipeline;
  if (!f.recompute.empty()) {
    SC_ASSIGN_OR_RETURN(plan::Recompute rc, plan::parse_recompute(f.recompute));
    space.recompute = rc;
  }
  std::vector<int64_t> sweep_gpus;
  if (!f.sweep.empty() || !f.html.empty()) {
    SC_ASSIGN_OR_RETURN(sweep_gpus, plan::parse_sweep_spec(f.sweep.empty() ? kDefaultSweep : f.sweep));
  }

  // The plan at the cluster's size: the layout given, or the fastest that fits.
  const bool layout_given = f.tp || f.pp || f.dp || f.ep || f.cp;
  std::optional<plan::Plan> main_plan;
  if (f.search || !layout_given) {
    SC_RETURN_IF_ERROR(plan::validate_search_space(model, cluster, run, space));
    plan::SearchResult result = plan::search_layouts(model, cluster, run, space);
    if (result.fitting.empty() && f.sweep.empty()) return nothing_fits(model, cluster, result);
    if (!result.fitting.empty()) main_plan = result.fitting.front();
    if (f.search) {
      print_search(model, cluster, result, f.json);
    } else if (f.sweep.empty()) {
      fmt::print("{}", f.json ? plan::plan_to_json(*main_plan).dump(2) + "\n"
                              : "no layout given: the one that fits and trains in the fewest days, failures included (--search lists the others)\n" +
                                    plan::format_plan(*main_plan));
    }
  } else {
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
    layout.software = space.software;
    layout.balance_pipeline = f.balance_pipeline;
    SC_ASSIGN_OR_RETURN(plan::Plan p, plan::plan_run(model, cluster, layout, run));
    main_plan = p;
    if (f.sweep.empty()) fmt::print("{}", f.json ? plan::plan_to_json(p).dump(2) + "\n" : plan::format_plan(p));
  }

  std::vector<plan::SweepPoint> sweep;
  if (!sweep_gpus.empty()) {
    // A fixed --dp belongs to one cluster size; the sweep derives it.
    plan::SearchSpace sweep_space = space;
    sweep = plan::run_sweep(model, cluster, run, sweep_space, sweep_gpus);
  }
  if (!f.sweep.empty()) {
    if (f.json) {
      fmt::print("{}\n", plan::sweep_to_json(sweep).dump(2));
    } else {
      fmt::print("sweep: {} on {} clusters ({}), seq {}, batch {:.2f}M tokens, {:.3g} training tokens, software {}\n{}",
                 model.name, cluster.gpu.name, cluster.name, run.seq_len, run.global_batch_tokens / 1e6,
                 run.train_tokens, space.software.name, plan::format_sweep(sweep));
    }
  }
  if (!f.html.empty()) {
    if (!main_plan) {
      for (auto it = sweep.rbegin(); it != sweep.rend() && !main_plan; ++it)
        if (it->best) main_plan = it->best;
      if (!main_plan) return Status::invalid("--html {}: no layout fits at any size, nothing to report", f.html);
    }
    SC_RETURN_IF_ERROR(write_file_atomic(f.html, plan::render_html_report(*main_plan, sweep)));
    if (!f.json) fmt::print("wrote {}\n", f.html);
  }
  return Status();
}

}  // namespace

CLI::App* add_plan_command(CLI::App& root, CommandRunner* runner) {
  auto f = std::make_shared<PlanFlags>();
  CLI::App* sub = root.add_subcommand("plan", "Plan a training run on a cluster: layout, memory, step time, MFU, "
                                              "days, MW, failures, goodput");
  sub->add_option("--model", f->model, "Model preset (gpt3-175b, megatron-1t, llama3-405b, grok-1, ...) or config.json")
      ->capture_default_str();
  sub->add_option("--cluster", f->cluster,
                  "Cluster preset (colossus-100k, oracle-24k, selene-a100, llama3-h100, dgx-h100) or .json")
      ->capture_default_str();
  sub->add_option("--gpu", f->gpu, "GPU type: a100-40gb, a100-80gb, h100-sxm, h200, b200 (default: the cluster's)");
  // Numbers are taken as text and parsed by read_flags(), which checks
  // type, finiteness and range the same way for every one of them.
  auto number = [&](const char* name, const char* type, const char* help) {
    return sub->add_option_function<std::string>(
        name, [f, name](const std::string& text) { f->numbers[name] = text; }, help)->type_name(type);
  };
  number("--gpus", "INT", "GPUs to use (default: the cluster's)");
  number("--tp", "INT", "Tensor parallel size (with sequence parallelism)");
  number("--pp", "INT", "Pipeline stages");
  number("--vp", "INT", "Virtual stages per pipeline rank (interleaved schedule)");
  number("--dp", "INT", "Data parallel size (default: GPUs / (tp x pp x cp))");
  number("--ep", "INT", "Expert parallel size (MoE)");
  number("--cp", "INT", "Context parallel size");
  number("--micro-batch", "INT", "Sequences per micro-batch");
  number("--global-batch-tokens", "INT", "Tokens per optimizer step (default 2^24)");
  number("--seq-len", "INT", "Sequence length (default: the model's)");
  sub->add_option("--recompute", f->recompute, "Activation recomputation: none, selective, full (default selective)");
  number("--zero", "INT", "ZeRO stage 0-3 over the data-parallel group (default 1)");
  number("--train-tokens", "FLOAT", "Tokens to train on (default 20 per active parameter)");
  number("--gpu-hour-usd", "FLOAT", "Price of a GPU-hour (default: the cluster's)");
  sub->add_option("--software", f->software, "Training software: current, llama3-2024 or megatron-2021")
      ->capture_default_str();
  sub->add_flag("--no-overlap-dp", f->no_overlap_dp, "Data-parallel communication does not overlap compute (2021 Megatron)");
  sub->add_flag("--balance-pipeline", f->balance_pipeline,
                "Embedding and output+loss each take one layer slot in the pipeline split (Llama 3)");
  sub->add_flag("--json", f->json, "Print JSON (keys in docs/plan.md)");
  sub->add_flag("--search", f->search, "Rank every valid layout; say why the others were rejected");
  sub->add_option("--sweep", f->sweep, "Scaling curve over cluster sizes, e.g. gpus=1024,4096,16384,100000");
  sub->add_option("--html", f->html, "Write a self-contained HTML report with charts to this file");
  sub->add_flag("--validate", f->validate, "Print the planner against published training runs");
  sub->add_flag("--calibrate", f->calibrate,
                "Measure this machine's GEMM, attention and 2-rank MPI all-reduce beside the model's curves");
  sub->add_flag("--calibrate-allreduce-worker", f->calibrate_worker, "(internal: one rank of --calibrate)")
      ->group("");
  runner->check = [f]() { return read_flags(f.get()); };
  runner->run = [f]() { return run_plan(*f); };
  return sub;
}

}  // namespace sc::cli
