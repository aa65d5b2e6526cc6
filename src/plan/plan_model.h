// The model as the planner sees it: a ModelConfig (so parameters and FLOPs
// come from model/counts.h, the one definition) plus the few facts about the
// block that ModelConfig cannot say and that change memory and kernel shapes:
// whether the MLP is gated, whether attention is a fused (flash) kernel, and
// whether dropout masks are kept. Presets for the published runs used to
// validate the planner live here; trainer presets and config.json files
// resolve through ModelConfig::resolve.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/config.h"

namespace sc::plan {

struct PlanModel {
  std::string name;
  // FLOP- and parameter-equivalent config. GPT-3 and Megatron-1T have a
  // non-gated 4h MLP (2 matrices of H x 4H); ModelConfig only has gated
  // MLPs (3 matrices of H x F), so they are written with F = 8H/3, which has
  // the same weights and the same matmul FLOPs (as the gpt2-124m preset does).
  ModelConfig config;
  bool gated_mlp = true;
  int64_t mlp_width = 0;         // the real MLP hidden width (4H for GPT-3)
  bool flash_attention = true;   // fused attention: no s x s scores kept or moved
  bool dropout = false;          // dropout masks kept for backward (GPT-3 era)
  bool rotary = true;            // rotary position embeddings (GPT-3: learned absolute positions)
  int64_t default_seq_len = 0;
};

// A GPT of Narayanan et al. 2021 (vocabulary 51,200, sequence 2,048, GELU
// MLP of 4h, dropout, 2021 unfused attention) of the given shape: the models
// of their Table 1 and Table 2.
Result<PlanModel> megatron_gpt_model(const std::string& name, int64_t layers, int64_t hidden, int64_t heads);

// "gpt3-175b", "megatron-1t", "llama3-405b", then every trainer preset, or a
// config.json path.
Result<PlanModel> resolve_plan_model(const std::string& preset_or_path);
std::vector<std::string> plan_model_preset_names();

}  // namespace sc::plan
