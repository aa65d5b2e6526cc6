#include "plan/validation.h"

#include <tuple>

namespace sc::plan {
namespace {

// Narayanan et al. 2021 (arXiv:2104.04473): Selene, DGX A100 80 GB, full
// recomputation, micro-batch 1, fp16, no distributed optimizer. Section 5.1:
// "we use the interleaved pipeline schedule": v is not given, so the least
// interleaving the stage's layers allow (2, or 3 when a stage holds 3).
PublishedRun megatron_2021(std::string name, std::string source, int64_t layers, int64_t hidden, int64_t heads,
                           int64_t gpus, int64_t tp, int64_t pp, int64_t batch, double tflops) {
  PublishedRun r;
  r.name = std::move(name);
  r.source = std::move(source);
  r.layers = layers, r.hidden = hidden, r.heads = heads;
  r.cluster = "selene-a100";
  r.software = "megatron-2021";
  r.gpus = gpus, r.tp = tp, r.pp = pp, r.dp = gpus / (tp * pp);
  const int64_t stage_layers = layers / pp;
  r.vp = pp == 1 ? 1 : stage_layers % 2 == 0 ? 2 : stage_layers % 3 == 0 ? 3 : 1;
  r.seq_len = 2048;
  r.batch_sequences = batch;
  r.recompute = Recompute::kFull;
  r.zero = 0;
  r.hardware_flops = true;
  r.published_tflops_per_gpu = tflops;
  return r;
}

// The Llama 3 Herd of Models (arXiv:2407.21783), section 3.3.2 and Table 4:
// TP8 CP1 PP16, 8,192 tokens, 16M-token batches, BF16 MFU convention (PaLM).
// v = 8: "the first model chunk on the first stage has only the embedding"
// once one layer is taken from it, so chunks hold one layer, and 126 layers
// + embedding + loss = 128 = 16 x 8 slots.
PublishedRun llama3(int64_t gpus, double tflops) {
  PublishedRun r;
  r.name = "Llama 3 405B, " + std::to_string(gpus) + " H100";
  r.source = "Llama 3 (arXiv:2407.21783) 3.3.2, Table 4";
  r.model = "llama3-405b";
  r.cluster = "llama3-h100";
  r.software = "llama3-2024";
  r.gpus = gpus, r.tp = 8, r.pp = 16, r.vp = 8, r.dp = gpus / 128;
  r.seq_len = 8192;
  r.batch_sequences = 2048;
  // "No activation checkpointing" of layers; the planner's selective mode
  // recomputes only norm outputs and the SwiGLU product (docs/plan_validation.md).
  r.recompute = Recompute::kSelective;
  r.zero = 1;
  r.balance_pipeline = true;
  r.published_tflops_per_gpu = tflops;
  r.tolerance = 0.10;
  return r;
}

// NVIDIA's DGX Cloud benchmarking recipes (github.com/NVIDIA/dgxc-benchmarking,
// llama3.1/README_{8b,70b,405b}.md, NeMo 24.09, BF16, DGX H100): measured
// tokens/s per GPU with the full layout, micro-batch 1, sequence 8,192, the
// distributed optimizer. The recipes do not recompute whole layers; the
// planner's selective mode is the closest.
PublishedRun nemo_2409(const std::string& size, const std::string& model, int64_t gpus, int64_t tp, int64_t pp,
                       int64_t vp, int64_t cp, int64_t batch, double tokens_per_s_per_gpu) {
  PublishedRun r;
  r.name = "Llama 3.1 " + size + ", " + std::to_string(gpus) + " H100";
  r.source = "NVIDIA dgxc-benchmarking, NeMo 24.09";
  r.model = model;
  r.cluster = "dgx-h100";
  r.software = "current";
  r.gpus = gpus, r.tp = tp, r.pp = pp, r.vp = vp, r.cp = cp, r.dp = gpus / (tp * pp * cp);
  r.seq_len = 8192;
  r.batch_sequences = batch;
  r.recompute = Recompute::kSelective;
  r.zero = 1;
  r.published_tokens_per_s_per_gpu = tokens_per_s_per_gpu;
  r.tolerance = 0.10;
  return r;
}

}  // namespace

std::vector<PublishedRun> published_runs() {
  const std::string t1 = "Narayanan et al. 2021, Table 1";
  const std::string t2 = "Narayanan et al. 2021, Table 2 (PTD-P)";
  std::vector<PublishedRun> runs;
  // The three runs the issue names.
  PublishedRun gpt3 = megatron_2021("GPT-3 175B, 1024 A100", "Narayanan et al. 2021, 5.1 (training-time estimate)", 96,
                                    12288, 96, 1024, 8, 16, 1536, 140);
  gpt3.model = "gpt3-175b";
  gpt3.vp = 1;  // examples/pretrain_gpt3_175B.sh: TP8 PP16, no interleaving
  gpt3.named_in_issue = true;
  runs.push_back(gpt3);
  PublishedRun megatron_1t = megatron_2021("Megatron 1T, 3072 A100", t1, 128, 25600, 160, 3072, 8, 64, 3072, 163);
  megatron_1t.model = "megatron-1t";
  megatron_1t.named_in_issue = true;
  runs.push_back(megatron_1t);
  PublishedRun llama_16k = llama3(16384, 400);
  llama_16k.named_in_issue = true;
  runs.push_back(llama_16k);
  // Further published runs of the same papers, never used to set a constant.
  runs.push_back(llama3(8192, 430));
  const size_t first_further_megatron = runs.size();
  runs.push_back(megatron_2021("GPT 1.7B, 32 A100", t1, 24, 2304, 24, 32, 1, 1, 512, 137));
  runs.push_back(megatron_2021("GPT 3.6B, 64 A100", t1, 30, 3072, 32, 64, 2, 1, 512, 138));
  runs.push_back(megatron_2021("GPT 7.5B, 128 A100", t1, 36, 4096, 32, 128, 4, 1, 512, 142));
  runs.push_back(megatron_2021("GPT 18.4B, 256 A100", t1, 40, 6144, 48, 256, 8, 1, 1024, 135));
  runs.push_back(megatron_2021("GPT 39.1B, 512 A100", t1, 48, 8192, 64, 512, 8, 2, 1536, 138));
  runs.push_back(megatron_2021("GPT 76.1B, 1024 A100", t1, 60, 10240, 80, 1024, 8, 4, 1792, 140));
  runs.push_back(megatron_2021("GPT 145.6B, 1536 A100", t1, 80, 12288, 96, 1536, 8, 8, 2304, 148));
  runs.push_back(megatron_2021("GPT 310.1B, 1920 A100", t1, 96, 16384, 128, 1920, 8, 16, 2160, 155));
  runs.push_back(megatron_2021("GPT 529.6B, 2520 A100", t1, 105, 20480, 128, 2520, 8, 35, 2520, 163));
  runs.push_back(megatron_2021("GPT-3 175B, 384 A100", t2, 96, 12288, 96, 384, 8, 12, 1536, 153));
  runs.push_back(megatron_2021("GPT-3 175B, 768 A100", t2, 96, 12288, 96, 768, 8, 12, 1536, 149));
  runs.push_back(megatron_2021("GPT-3 175B, 1536 A100", t2, 96, 12288, 96, 1536, 8, 12, 1536, 141));
  runs.push_back(megatron_2021("GPT 529.6B, 560 A100", t2, 105, 20480, 128, 560, 8, 35, 2240, 171));
  runs.push_back(megatron_2021("GPT 529.6B, 1120 A100", t2, 105, 20480, 128, 1120, 8, 35, 2240, 167));
  runs.push_back(megatron_2021("GPT 529.6B, 2240 A100", t2, 105, 20480, 128, 2240, 8, 35, 2240, 159));
  for (size_t i = first_further_megatron; i < runs.size(); ++i) runs[i].tolerance = 0.15;
  // The same kind of GPU with a known modern software stack: total tokens/s
  // over the GPUs, from the recipes' logs (planner preset llama3-*, 3.1 shapes).
  runs.push_back(nemo_2409("8B", "llama3-8b", 8, 1, 1, 1, 2, 128, 81222.0 / 8));
  runs.push_back(nemo_2409("8B", "llama3-8b", 128, 1, 1, 1, 2, 2048, 1280704.0 / 128));
  runs.push_back(nemo_2409("70B", "llama3-70b", 64, 4, 4, 5, 2, 128, 71235.0 / 64));
  runs.push_back(nemo_2409("70B", "llama3-70b", 2048, 4, 4, 5, 2, 4096, 2248957.0 / 2048));
  // The 405B recipe trains on synthetic data with the GPT-2 tokenizer "as a
  // proxy": 50,257 tokens, padded by Megatron to a multiple of 128 x TP.
  for (const auto& [gpus, batch, tokens_per_s] : {std::tuple{576, 252, 120022.0}, std::tuple{2304, 1008, 468646.0}}) {
    PublishedRun r = nemo_2409("405B", "llama3-405b", gpus, 8, 9, 7, 2, batch, tokens_per_s / gpus);
    r.vocab_size = 51200;
    runs.push_back(r);
  }
  // Nemotron-4 340B, NVIDIA's recipe (dgxc-benchmarking nemotron/README_340b.md
  // @143b90dd, NeMo 24.09, BF16): TP8 PP8 v12, micro-batch 1, 4,096 tokens,
  // 2 sequences per node; the NeMo launcher's nemotron_340b.yaml: no
  // activation checkpointing, gradients reduced in bf16 (grad_sync_dtype).
  for (const auto& [gpus, tokens_per_s] : {std::pair{128, 28432.0}, std::pair{2048, 433296.0}}) {
    PublishedRun r;
    r.name = "Nemotron-4 340B, " + std::to_string(gpus) + " H100";
    r.source = "NVIDIA dgxc-benchmarking, NeMo 24.09";
    r.model = "nemotron4-340b";
    r.cluster = "dgx-h100";
    r.software = "current";
    r.main_grad_bytes = 2;
    r.gpus = gpus, r.tp = 8, r.pp = 8, r.vp = 12, r.dp = gpus / 64;
    r.seq_len = 4096;
    r.batch_sequences = gpus / 4;
    r.recompute = Recompute::kNone;
    r.zero = 1;
    r.published_tokens_per_s_per_gpu = tokens_per_s / gpus;
    r.tolerance = 0.10;
    // DP2 leaves 6 B/parameter of fp32 optimizer state per GPU: the planner
    // counts 90 GB where the recipe ran in 80 (docs/plan_validation.md).
    if (r.dp == 2) r.memory_overcount_allowed = 0.06;
    runs.push_back(r);
  }
  // Llama 3's long-context stage (Table 4, third row): CP16 at 131,072 tokens.
  PublishedRun long_context = llama3(16384, 380);
  long_context.name = "Llama 3 405B 128K, 16384 H100";
  long_context.cp = 16, long_context.dp = 8;
  long_context.seq_len = 131072;
  long_context.batch_sequences = 128;
  long_context.tolerance = 0.30;
  runs.push_back(long_context);
  return runs;
}

Result<ValidationRow> validate_run(const PublishedRun& run) {
  SC_ASSIGN_OR_RETURN(PlanModel model, run.model.empty()
                                           ? megatron_gpt_model(run.name, run.layers, run.hidden, run.heads)
                                           : resolve_plan_model(run.model));
  if (run.vocab_size > 0) model.config.vocab_size = run.vocab_size;
  SC_ASSIGN_OR_RETURN(ClusterSpec cluster, cluster_preset(run.cluster));
  cluster.num_gpus = run.gpus;
  Layout layout;
  layout.tp = run.tp, layout.pp = run.pp, layout.vp = run.vp, layout.dp = run.dp, layout.cp = run.cp;
  layout.recompute = run.recompute, layout.zero = run.zero, layout.balance_pipeline = run.balance_pipeline;
  SC_ASSIGN_OR_RETURN(layout.software, software_stack(run.software));
  if (run.main_grad_bytes > 0) layout.software.main_grad_bytes = run.main_grad_bytes;
  const RunSpec spec{run.seq_len, run.batch_sequences * run.seq_len, 1e12};
  SC_ASSIGN_OR_RETURN(Plan plan, plan_run(model, cluster, layout, spec));
  ValidationRow row;
  row.run = run;
  row.predicted_tflops_per_gpu = run.hardware_flops ? plan.hardware_tflops_per_gpu : plan.model_tflops_per_gpu;
  row.published_tflops_per_gpu = run.published_tokens_per_s_per_gpu > 0
                                     ? run.published_tokens_per_s_per_gpu * plan.model_flops_per_token / 1e12
                                     : run.published_tflops_per_gpu;
  row.error = row.predicted_tflops_per_gpu / row.published_tflops_per_gpu - 1;
  row.plan = std::move(plan);
  return row;
}

}  // namespace sc::plan
