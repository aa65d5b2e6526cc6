// What a software generation changes across the whole cost model, on the
// runs it was published with: elementwise work without sequence parallelism,
// gradient accumulation as a separate kernel, blocking pipeline sends, fp16
// main grads. The physics of each plan source is tested beside it
// (src/plan/*_test.cc).
#include <gtest/gtest.h>

#include <string>

#include "plan/cost_model.h"
#include "plan/kernel_model.h"
#include "plan/software.h"
#include "plan/validation.h"

namespace sc::plan {
namespace {

Plan plan_gpt3(const std::string& software) {
  auto model = resolve_plan_model("gpt3-175b");
  auto cluster = cluster_preset("selene-a100");
  EXPECT_TRUE(model.ok() && cluster.ok());
  cluster->num_gpus = 1024;
  Layout layout;
  layout.tp = 8, layout.pp = 16, layout.dp = 8, layout.zero = 0, layout.recompute = Recompute::kFull;
  layout.software = *software_stack(software);
  auto plan = plan_run(*model, *cluster, layout, RunSpec{2048, 1536 * 2048, 300e9});
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return *plan;
}

TEST(PlanSoftware, The2021StackRepeatsElementwiseWorkAndAddsGradientsSeparately) {
  const Plan old_stack = plan_gpt3("megatron-2021");
  const Plan current = plan_gpt3("current");
  // No sequence parallelism: norms, dropout and residual adds on all 8 TP ranks.
  EXPECT_GT(old_stack.step.elementwise_s, 3 * current.step.elementwise_s);
  EXPECT_GT(old_stack.step.grad_accum_s, 0);
  EXPECT_EQ(current.step.grad_accum_s, 0);
  EXPECT_EQ(current.step.pp_comm_s, 0);  // asynchronous sends hide behind compute
  EXPECT_GT(old_stack.step.pp_comm_s, 0);
  // fp16 main grads (2 B) against fp32 (4 B).
  EXPECT_NEAR(current.memory.grads_bytes / old_stack.memory.grads_bytes, 2.0, 0.01);
}

TEST(PlanSoftware, PyTorchAddsEveryMicroBatchsGradientToTheFp32OneWithAKernel) {
  // Llama 3's PyTorch stack: each micro-batch's fresh bf16 weight gradient is
  // read and added into the fp32 accumulator (read and written): 10 bytes
  // per local parameter per micro-batch, at the slowest GPU's pace.
  PublishedRun run;
  for (const auto& r : published_runs())
    if (r.name == "Llama 3 405B, 16384 H100") run = r;
  ASSERT_EQ(run.software, "llama3-2024");
  auto row = validate_run(run);
  ASSERT_TRUE(row.ok()) << row.status().message();
  const Plan& plan = row->plan;
  auto gpu = gpu_by_name(plan.gpu);
  auto cluster = cluster_preset(run.cluster);
  ASSERT_TRUE(gpu.ok() && cluster.ok());
  const double local_params = plan.memory.weights_bytes / 2;  // bf16 weights of the fullest (a middle) rank
  const double expected = static_cast<double>(plan.micro_batches) * stream_time_s(*gpu, local_params * 10) /
                          cluster->slowest_gpu_factor(run.gpus);
  EXPECT_NEAR(plan.step.grad_accum_s / expected, 1.0, 0.01) << plan.step.grad_accum_s << " s vs " << expected;
  // Megatron fuses the same accumulation into the wgrad GEMM (cuBLAS beta = 1).
  run.software = "current";
  auto fused = validate_run(run);
  ASSERT_TRUE(fused.ok());
  EXPECT_EQ(fused->plan.step.grad_accum_s, 0);
}

}  // namespace
}  // namespace sc::plan
