// The Mixture-of-Experts feed-forward of docs/model.md: softmax router, top-k,
// dropless dispatch (optional capacity), one GEMM per expert on its group of
// tokens, weighted combine; load-balancing and z losses. Forward and backward
// side by side; all buffers come from the caller (the model's arena).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/activation.h"
#include "kernels/weight_format.h"

namespace sc {

struct MoeShape {
  size_t N = 0;  // tokens
  size_t H = 0;  // hidden
  size_t F = 0;  // expert width
  size_t E = 0;  // experts
  size_t k = 0;  // experts per token
  bool renormalize = false;
  double capacity_factor = 0.0;  // 0: dropless
  GatedActivation act = GatedActivation::kSilu;
};

struct MoeWeights {
  float* router = nullptr;  // [E, H]
  std::vector<float*> w1, w3, w2;  // per expert: gate [F, H], up [F, H], down [H, F]
};

// What the forward keeps for the backward, per layer. Sizes in floats (or ints).
struct MoeActivations {
  float* router_logits;  // [N, E]
  float* probs;          // [N, E]
  float* logsumexp;      // [N]
  float* weights;        // [N, k] combine weight of each slot (0 when dropped)
  int32_t* experts;      // [N, k] chosen expert of each slot
  int32_t* rows;         // [N, k] row of the slot in the expert-sorted buffers, -1 when dropped
  int32_t* row_tokens;   // [N·k] token of each sorted row
  int32_t* offsets;      // [E + 1] first sorted row of each expert
  float* x_sorted;       // [N·k, H] inputs gathered by expert
  float* gate;           // [N·k, F]
  float* up;             // [N·k, F]
  float* act;            // [N·k, F]
  float* y_sorted;       // [N·k, H] expert outputs
};

// Scratch shared by every layer's backward.
struct MoeBackwardScratch {
  float* d_y_sorted;  // [N·k, H]
  float* d_x_sorted;  // [N·k, H]
  float* d_act;       // [N·k, F]
  float* d_gate;      // [N·k, F]
  float* d_up;        // [N·k, F]
  float* d_weights;   // [N, k]
  float* d_logits;    // [N, E]
};

struct MoeStats {
  std::vector<int64_t> routed;  // [E] assignments the router made to each expert
  int64_t dropped = 0;          // assignments past capacity
  double aux_loss = 0;          // E · Σ f_e P_e (1 when uniform)
  double z_loss = 0;            // mean (logsumexp r)²
};

// The experts' matrices as the forward multiplies by them: fp32 views of
// MoeWeights in training, packed copies (bf16, int8) in inference. The
// router always stays fp32: quantizing it would move tokens between experts.
struct ExpertMatrices {
  std::vector<WeightMatrix> w1, w3, w2;
};
ExpertMatrices fp32_expert_matrices(const MoeWeights& w);

// out [N, H] (overwritten) from x [N, H]; the router from w, the experts
// from `experts`.
void moe_forward(ThreadPool& pool, const MoeShape& shape, const MoeWeights& w, const ExpertMatrices& experts,
                 const float* x, float* out, const MoeActivations& a, MoeStats* stats);

// From dout [N, H]: dx [N, H] += ∂L/∂x, and every weight gradient +=.
// aux_scale and z_scale are the weights of this layer's aux and z losses in
// the total loss (coefficient / MoE layers / micro-batches).
void moe_backward(ThreadPool& pool, const MoeShape& shape, const MoeWeights& w, const MoeWeights& grads,
                  const float* x, const float* dout, float* dx, const MoeActivations& a, const MoeStats& stats,
                  const MoeBackwardScratch& scratch, float aux_scale, float z_scale);

}  // namespace sc
