// Learning rate: linear warmup from 0, then cosine decay to min_lr at the
// last step (the schedule of GPT-3, Llama and Megatron-LM's default).
#pragma once

#include <cmath>
#include <cstdint>

namespace sc {

struct LrSchedule {
  double max_lr = 3e-4;
  double min_lr = 3e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  // LR for optimizer step `step` (0-based).
  double at(int64_t step) const {
    if (warmup_steps > 0 && step < warmup_steps) return max_lr * static_cast<double>(step + 1) / warmup_steps;
    const int64_t decay_steps = total_steps - warmup_steps;
    if (decay_steps <= 1) return max_lr;
    double progress = static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps - 1);
    if (progress > 1.0) progress = 1.0;
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + std::cos(3.141592653589793 * progress));
  }
};

}  // namespace sc
