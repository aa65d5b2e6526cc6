// The training software a run uses, as far as it changes time and memory on
// the same hardware. The same GPUs ran GPT-3 at 140 TFLOP/s in 2021 and at
// about 180 in 2022 (Korthikanti et al.): the difference is software, so the
// planner names it instead of hiding it in an efficiency constant.
// docs/plan.md gives the source of each field of each preset.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace sc::plan {

struct SoftwareStack {
  std::string name;
  // Sequence parallelism (Korthikanti et al. 2022): norms, dropout and
  // residual adds, and their saved inputs, are split over the TP group
  // instead of being repeated on every TP rank.
  bool sequence_parallel = true;
  // Data-parallel gradient reduce-scatter / parameter all-gather overlap the
  // backward / forward (Megatron-core overlap_grad_reduce and
  // overlap_param_gather, FSDP prefetch). 2021: after the pipeline flush.
  bool overlap_dp = true;
  // Pipeline sends and receives run asynchronously beside compute (Llama 3
  // section 3.3.2; Megatron-core overlap_p2p_comm). 2021: blocking.
  bool overlap_pp = true;
  // The weight-gradient GEMM accumulates into the main gradient (cuBLAS
  // beta = 1, Megatron --gradient-accumulation-fusion). Without it (Megatron
  // 2021, PyTorch autograd and FSDP) every micro-batch writes a fresh
  // gradient and a separate kernel adds it.
  bool fused_grad_accumulation = true;
  // Bytes of one accumulated gradient element: fp32 main grads (bf16 runs,
  // Llama 3) or fp16 (2021 fp16 runs).
  double main_grad_bytes = 4;
  // The output tensor of a pipeline stage is freed once sent (Megatron
  // deallocate_output_tensor; Llama 3 "proactively deallocate").
  bool free_pipeline_outputs = true;
  // Fused attention kernel generation: 2 (FlashAttention-2) or 3
  // (FlashAttention-3 / cuDNN-class kernels on Hopper and later).
  int flash_attention_version = 3;
};

// "current" (Megatron-core 2025), "llama3-2024" (the Llama 3
// 405B run, before FlashAttention-3) or "megatron-2021" (Narayanan et al.).
Result<SoftwareStack> software_stack(const std::string& name);
std::vector<std::string> software_stack_names();

}  // namespace sc::plan
