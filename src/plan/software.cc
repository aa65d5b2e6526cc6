#include "plan/software.h"

#include "plan/input_ranges.h"

namespace sc::plan {

std::vector<std::string> software_stack_names() { return {"current", "llama3-2024", "megatron-2021"}; }

Result<SoftwareStack> software_stack(const std::string& name) {
  SoftwareStack s;
  s.name = name;
  if (name == "current") return s;
  if (name == "llama3-2024") {
    // The Llama 3 405B pre-training (Llama 3 paper, section 3.3.2): SP, FSDP
    // prefetch, asynchronous p2p, fp32 gradient accumulation, freed stage
    // tensors; trained in the first half of 2024, before FlashAttention-3
    // (July 2024). A PyTorch stack (3.3.4 debugs it with PyTorch's NCCL flight
    // recorder): its fp32 accumulation over micro-batches is a separate add of
    // each fresh bf16 gradient (FSDP's accumulate_unsharded_grad_if_needed,
    // autograd's AccumulateGrad); fusing it into the wgrad GEMM is Megatron's.
    s.flash_attention_version = 2;
    s.fused_grad_accumulation = false;
    return s;
  }
  if (name == "megatron-2021") {
    // Megatron-LM as of Narayanan et al. 2021 (container nvcr.io pytorch
    // 20.12, --fp16): no sequence parallelism (introduced in 2022), gradient
    // all-reduce after the flush, blocking p2p with scatter/gather, the DDP
    // hook main_grad.add_(grad) once per micro-batch, fp16 main grads,
    // stage outputs kept until their backward.
    s.sequence_parallel = false;
    s.overlap_dp = false;
    s.overlap_pp = false;
    s.fused_grad_accumulation = false;
    s.main_grad_bytes = 2;
    s.free_pipeline_outputs = false;
    s.flash_attention_version = 2;
    return s;
  }
  return Status::not_found("unknown --software {} (current, llama3-2024 or megatron-2021)", quote_input(name));
}

}  // namespace sc::plan
