// Token embedding: out[n] = E[token[n]] · multiplier (embedding_multiplier_scale).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "core/thread_pool.h"

namespace sc {

// out [N, C] from E [V, C]. Fails (writing nothing) when a token is >= V.
Status embedding_forward(ThreadPool& pool, float* out, const uint32_t* tokens, const float* E,
                         size_t N, size_t V, size_t C, float multiplier);

// dE [V, C] += multiplier · dout[n] at row tokens[n], for every n, ACCUMULATED.
// Split over hidden columns, rows added in token order: no atomics, and the
// result is identical for any pool size. Tokens must be < V (checked by the forward).
void embedding_backward(ThreadPool& pool, float* dE, const float* dout, const uint32_t* tokens,
                        size_t N, size_t C, float multiplier);

}  // namespace sc
