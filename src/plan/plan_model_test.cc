#include "plan/plan_model.h"

#include <gtest/gtest.h>

#include <utility>

#include "model/counts.h"
#include "plan/cost_model.h"

namespace sc::plan {
namespace {

TEST(PlanModels, LlamaPresetsHaveMetasParameterCounts) {
  // Meta's model cards: Llama 3.1 8B 8.03B, 70B 70.6B, 405B 405.9B.
  for (const auto& [name, billions] :
       {std::pair{"llama3-8b", 8.03}, std::pair{"llama3-70b", 70.55}, std::pair{"llama3-405b", 405.85}}) {
    auto model = resolve_plan_model(name);
    ASSERT_TRUE(model.ok()) << name;
    const double params = static_cast<double>(model_facts(*model, 8192).counts.total) / 1e9;
    EXPECT_NEAR(params, billions, 0.01 * billions) << name;
  }
}

TEST(PlanModels, NemotronPresetHasTheReportsParameterCounts) {
  // Nemotron-4 340B report, section 2: 9.4B embedding and 331.6B other parameters.
  auto model = resolve_plan_model("nemotron4-340b");
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ParameterCounts counts = model_facts(*model, 4096).counts;
  const double embedding = static_cast<double>(counts.embedding + counts.output) / 1e9;
  EXPECT_NEAR(embedding, 9.4, 0.05);
  EXPECT_NEAR(static_cast<double>(counts.total) / 1e9 - embedding, 331.6, 0.5);
  EXPECT_FALSE(model->gated_mlp);
  EXPECT_EQ(model->mlp_width, 73728);
}

}  // namespace
}  // namespace sc::plan
