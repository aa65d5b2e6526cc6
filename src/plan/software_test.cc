#include "plan/software.h"

#include <gtest/gtest.h>

#include <string>

namespace sc::plan {
namespace {

TEST(PlanSoftware, EveryNamedStackResolvesUnderItsName) {
  for (const auto& name : software_stack_names()) {
    auto stack = software_stack(name);
    ASSERT_TRUE(stack.ok()) << name;
    EXPECT_EQ(stack->name, name);
  }
  auto unknown = software_stack("deepspeed");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message().rfind("unknown --software 'deepspeed'", 0), 0u) << unknown.status().message();
}

TEST(PlanSoftware, OlderStacksOnlyLackWhatCameLater) {
  // Each field of "current" is the later technique: an older stack may lack
  // any of them, never have more.
  auto current = software_stack("current");
  ASSERT_TRUE(current.ok());
  for (const auto& name : software_stack_names()) {
    const SoftwareStack s = *software_stack(name);
    EXPECT_LE(s.sequence_parallel, current->sequence_parallel) << name;
    EXPECT_LE(s.overlap_dp, current->overlap_dp) << name;
    EXPECT_LE(s.overlap_pp, current->overlap_pp) << name;
    EXPECT_LE(s.fused_grad_accumulation, current->fused_grad_accumulation) << name;
    EXPECT_LE(s.free_pipeline_outputs, current->free_pipeline_outputs) << name;
    EXPECT_LE(s.flash_attention_version, current->flash_attention_version) << name;
  }
  // Sequence parallelism and FlashAttention-3 postdate Megatron 2021; its
  // runs were fp16 with fp16 main grads.
  const SoftwareStack old_stack = *software_stack("megatron-2021");
  EXPECT_FALSE(old_stack.sequence_parallel);
  EXPECT_LT(old_stack.flash_attention_version, 3);
  EXPECT_EQ(old_stack.main_grad_bytes, 2);
  // Llama 3 405B trained before FlashAttention-3 was released (July 2024).
  EXPECT_LT(software_stack("llama3-2024")->flash_attention_version, 3);
}

}  // namespace
}  // namespace sc::plan
