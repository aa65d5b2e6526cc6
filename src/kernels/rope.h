// Rotary position embedding, rotate-half convention (Hugging Face Llama):
// for pair i < D/2 of a head, angle = p·θ_i, θ_i = theta^(−2i/D):
//   out[i]       = x[i]·cos − x[i + D/2]·sin
//   out[i + D/2] = x[i + D/2]·cos + x[i]·sin
#pragma once

#include <cstddef>

#include "core/thread_pool.h"

namespace sc {

// Fills cos_table and sin_table, each [T, D/2], for positions
// first_position .. first_position + T − 1 (angles in double, stored fp32).
// Called once at start-up; D must be even.
void rope_tables_fill(float* cos_table, float* sin_table, size_t T, size_t D, double theta,
                      size_t first_position = 0);

// In place on x [N, H·D] (q with H = Hq, or k with H = Hkv); row n is
// position t = n mod T and uses table row t. For one token at position p,
// pass N = T = 1 and tables offset by p·D/2.
void rope_forward(ThreadPool& pool, float* x, const float* cos_table, const float* sin_table,
                  size_t N, size_t T, size_t H, size_t D);

// rope_forward with row n at positions[n] (table row positions[n]): tokens of
// many sequences, each at its own position (inference).
void rope_forward_at(ThreadPool& pool, float* x, const float* cos_table, const float* sin_table,
                     const size_t* positions, size_t N, size_t H, size_t D);

// In place on the gradient dx [N, H·D]: the inverse rotation, so on return dx
// holds ∂L/∂(input of rope_forward). Overwrites (the rotation is orthogonal).
void rope_backward(ThreadPool& pool, float* dx, const float* cos_table, const float* sin_table,
                   size_t N, size_t T, size_t H, size_t D);

}  // namespace sc
