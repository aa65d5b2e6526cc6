// The cost model of one training run on one cluster with one parallel
// layout: memory per GPU, step time by part, throughput, MFU, power, energy,
// cost and reliability. Physics, not fits: kernel times from datasheet peaks
// and independently measured sustained efficiencies, collectives from link
// rates and NCCL's ring/all-to-all volumes, the pipeline schedule's bubble
// and in-flight micro-batches, what the training software overlaps and
// fuses (software.h), the slowest of the job's GPUs, activation memory after
// Korthikanti et al. 2022. docs/plan.md derives each formula and cites each
// constant; docs/plan_validation.md checks the result against published runs.
// plan_run assembles the parts: gpu_share.h (what one GPU holds), layer_time.h,
// step_time.h, memory_model.h and reliability.h.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "model/counts.h"
#include "plan/hardware.h"
#include "plan/plan_model.h"
#include "plan/software.h"

namespace sc::plan {

enum class Recompute { kNone, kSelective, kFull };
std::string recompute_name(Recompute recompute);
Result<Recompute> parse_recompute(const std::string& name);

struct Layout {
  int64_t tp = 1;           // tensor parallel (with sequence parallelism)
  int64_t pp = 1;           // pipeline stages
  int64_t vp = 1;           // virtual stages per pipeline rank (interleaved 1F1B)
  int64_t dp = 0;           // data parallel; 0: num_gpus / (tp * pp * cp)
  int64_t ep = 1;           // expert parallel, carved out of dp * cp
  int64_t cp = 1;           // context parallel (ring attention)
  int64_t zero = 1;         // 0: replicated; 1: optimizer; 2: + grads; 3: + weights sharded over dp * cp
  int64_t micro_batch = 1;  // sequences per micro-batch
  // kSelective: with unfused attention, the attention core (Korthikanti et
  // al. 2022); with fused (flash) attention, which recomputes its core
  // anyway, the norm outputs and the gated-MLP product (Megatron-core
  // recompute_modules "layernorm" and the activation).
  Recompute recompute = Recompute::kSelective;
  // The embedding and the output + loss each take one layer slot in the
  // pipeline split (Llama 3; docs/plan.md).
  bool balance_pipeline = false;
  SoftwareStack software;   // what the software overlaps, fuses and frees
};

struct RunSpec {
  int64_t seq_len = 0;
  int64_t global_batch_tokens = 0;
  double train_tokens = 0;
};

struct MemoryBreakdown {
  double weights_bytes = 0;
  double grads_bytes = 0;
  double optimizer_bytes = 0;
  double activations_bytes = 0;   // of the pipeline rank with the most memory
  int64_t pipeline_rank = 0;      // that rank
  double buffers_bytes = 0;
  double total_bytes = 0;
  double capacity_bytes = 0;
  bool fits = false;
};

// One optimizer step on the critical path, in seconds. Compute and
// communication inside a micro-batch are summed per micro-batch, then times
// the number of micro-batches; `bubble_s` is the pipeline fill and drain.
struct StepBreakdown {
  double gemm_s = 0;          // matmuls (recomputation included)
  double attention_s = 0;     // attention core (scores, softmax, weighted sum)
  double elementwise_s = 0;   // norms, activations, residuals: bandwidth-bound
  double grad_accum_s = 0;    // adding each micro-batch's weight gradient when not fused into the GEMM
  double tp_comm_s = 0;       // all-gather / reduce-scatter on the TP group
  double pp_comm_s = 0;       // send / recv between stages, exposed part
  double ep_comm_s = 0;       // all-to-all dispatch and combine
  double cp_comm_s = 0;       // K/V all-gather not hidden by attention compute
  double dp_comm_s = 0;       // gradient reduce-scatter + parameter all-gather, exposed part
  double bubble_s = 0;        // (p - 1) / v micro-batch times of the slowest rank, + each hop once
  double optimizer_s = 0;     // AdamW update, bandwidth-bound
  double step_s = 0;
};

struct Reliability {
  double interruptions_per_day = 0;
  double job_mtbf_s = 0;
  double checkpoint_bytes = 0;
  double checkpoint_write_s = 0;
  double checkpoint_interval_s = 0;  // Daly 2006
  double expected_interruptions = 0;
  double lost_fraction = 0;          // checkpoint writes + restarts + recomputed work
  double goodput = 0;
};

struct Plan {
  std::string model;
  std::string cluster;
  nlohmann::json cluster_spec;  // ClusterSpec::to_json(): a cluster file that plans the same
  std::string gpu;
  int64_t num_gpus = 0;   // GPUs the layout uses: tp x pp x cp x dp
  int64_t idle_gpus = 0;  // the cluster's others (when dp was derived): spares, still powered
  Layout layout;
  RunSpec run;
  int64_t micro_batches = 0;  // per pipeline per step
  double total_parameters = 0;
  double active_parameters = 0;
  double model_flops_per_token = 0;  // from model/counts.h: 6N + 12 L T Hq D
  MemoryBreakdown memory;
  StepBreakdown step;
  double tokens_per_s = 0;
  double mfu = 0;                       // model FLOP/s / (GPUs x dense bf16 peak)
  double model_tflops_per_gpu = 0;
  double hardware_tflops_per_gpu = 0;   // recomputation counted too (Megatron 2021's convention)
  double days = 0;                      // compute days, no interruptions
  double effective_days = 0;            // days / goodput
  double gpu_hours = 0;                 // over effective days
  double it_power_mw = 0;
  double facility_power_mw = 0;
  // Facility power by where it goes: GPUs at TDP, the rest of each node
  // (CPUs, memory, NICs, NVSwitch, fans), network and storage, and cooling
  // and power conversion (the PUE overhead).
  struct PowerBreakdown {
    double gpus_mw = 0, node_rest_mw = 0, network_storage_mw = 0, cooling_mw = 0;
  } power;
  double energy_mwh = 0;                // facility energy over effective days
  double cost_usd = 0;
  Reliability reliability;
};

// Checks the layout against the model and cluster; the message names the
// flag at fault (e.g. "--tp 7 does not divide num_attention_heads 48").
// Every size must lie in its range (plan/input_ranges.h). Fills layout->dp
// when 0.
Status validate_layout(const PlanModel& model, const ClusterSpec& cluster, const RunSpec& run, Layout* layout);

// The parts of validate_layout that need one flag and no other, which a
// search checks once for the flags given before trying layouts.
Status validate_run(const RunSpec& run);  // sizes in range, the batch a whole number of sequences
Status validate_tp(const PlanModel& model, const ClusterSpec& cluster, int64_t tp);
Status validate_stages(const PlanModel& model, int64_t pp, int64_t vp, bool balance_pipeline);
Status validate_ep(const PlanModel& model, int64_t ep);
Status validate_cp(const RunSpec& run, int64_t cp);

// Parameter counts and FLOPs per token, from model/counts.h (the one
// definition). Computing them is most of plan_run's time, so a search
// computes them once and passes them in.
struct ModelFacts {
  ParameterCounts counts;
  FlopsPerToken flops;
};
ModelFacts model_facts(const PlanModel& model, int64_t seq_len);

Result<Plan> plan_run(const PlanModel& model, const ClusterSpec& cluster, Layout layout, const RunSpec& run,
                      const ModelFacts* facts = nullptr);

// Stable keys, documented in docs/plan.md.
nlohmann::json plan_to_json(const Plan& plan);

}  // namespace sc::plan
