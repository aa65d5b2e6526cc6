// The middle of a gated feed-forward block: h = act(gate) ⊙ up.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/status.h"
#include "core/thread_pool.h"

namespace sc {

enum class GatedActivation {
  kGeluTanh,  // hidden_act "gelu_pytorch_tanh" (also "gelu_new", "gelu_fast"): Grok-1, Gemma
  kSilu,      // hidden_act "silu": SwiGLU, Llama, Mixtral
};

// From a Hugging Face `hidden_act` string.
Result<GatedActivation> gated_activation_from_name(std::string_view hidden_act);

// out[i] = act(gate[i]) · up[i] for i < count (count = N·F; all [N, F]).
void gated_activation_forward(ThreadPool& pool, float* out, const float* gate, const float* up,
                              size_t count, GatedActivation act);

// Gradients ACCUMULATED:
//   dgate[i] += dout[i] · up[i] · act'(gate[i]);   dup[i] += dout[i] · act(gate[i])
void gated_activation_backward(ThreadPool& pool, float* dgate, float* dup, const float* dout,
                               const float* gate, const float* up, size_t count,
                               GatedActivation act);

}  // namespace sc
