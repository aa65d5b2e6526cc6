// Causal grouped-query attention with a logit multiplier and optional
// soft-capping (docs/model.md):
//   s[i, j] = (q_i · k_j) · multiplier;  s = c·tanh(s/c) if c > 0;  j <= i
//   out_i   = Σ_j softmax_j(s[i, ·]) v_j
// Layouts: q, out [N, Hq·D]; k, v [N, Hkv·D]; N = B·T, token n = b·T + t,
// head h at columns h·D..h·D+D−1; query head h reads kv head h / (Hq/Hkv).
// lse (log-sum-exp of each softmax row) is [B, Hq, T].
//
// Inference runs the same blocks over a KV cache laid out like k and v above,
// [slots, context, Hkv·D] (B = slots, T = context): queries at explicit
// positions, in segments of consecutive positions of one sequence each.
//
// Work goes in blocks of kAttentionQueryBlock query rows against all keys up
// to the block's last row: per thread at most two [block, T] score tiles live
// in scratch, never a T×T matrix. The tile products run on sgemm.
#pragma once

#include <cstddef>

#include "core/thread_pool.h"

namespace sc {

inline constexpr size_t kAttentionQueryBlock = 64;

struct AttentionShape {
  size_t B = 0;        // sequences
  size_t T = 0;        // tokens per sequence
  size_t Hq = 0;       // query heads
  size_t Hkv = 0;      // key/value heads; divides Hq
  size_t D = 0;        // head dim
  float multiplier = 0.0f;  // scale of q·k (attn_output_multiplier, usually 1/sqrt(D))
  float softcap = 0.0f;     // attn_logit_softcapping c; 0: off
};

// Floats of scratch attention_forward and attention_backward need for a pool
// of num_threads threads: 2 · kAttentionQueryBlock · T per thread.
size_t attention_scratch_floats(size_t T, size_t num_threads);

// Writes out [N, Hq·D] and lse [B, Hq, T]. Parallel over (b, h, query block);
// every output element is computed by one thread in a fixed order, so the
// result does not depend on the pool size.
void attention_forward(ThreadPool& pool, float* out, float* lse, const float* q, const float* k,
                       const float* v, const AttentionShape& shape, float* scratch);

// Gradients ACCUMULATED: dq [N, Hq·D] +=, dk [N, Hkv·D] +=, dv [N, Hkv·D] +=.
// Needs the forward's inputs, its out and lse (scores are recomputed).
// Parallel over (b, kv head): the query heads sharing a kv head run in one
// thread in a fixed order, so there are no races and results do not depend on
// the pool size. Needs B·Hkv >= threads to use them all.
void attention_backward(ThreadPool& pool, float* dq, float* dk, float* dv, const float* dout,
                        const float* q, const float* k, const float* v, const float* out,
                        const float* lse, const AttentionShape& shape, float* scratch);

// A run of query rows of one sequence for the cached kernels: rows
// row..row+rows−1 of q and out are positions position..position+rows−1 of
// cache slot `slot`; the query at position p attends to the slot's keys 0..p.
struct AttentionSegment {
  size_t row = 0;
  size_t rows = 0;
  size_t slot = 0;
  size_t position = 0;
};

// Stores each segment's keys and values k, v [N, Hkv·D] at its positions of
// k_cache, v_cache [cache.B, cache.T, Hkv·D]. Segments must fit the cache.
void attention_cache_store(float* k_cache, float* v_cache, const float* k, const float* v,
                           const AttentionShape& cache, const AttentionSegment* segments,
                           size_t num_segments);

// attention_forward for queries q [N, Hq·D] at the segments' positions over
// the cached keys and values (stored beforehand, the segments' own included):
// writes out [N, Hq·D]. `cache` gives the cache's slots (B), context (T) and
// the heads, multiplier and soft-cap; scratch is attention_scratch_floats(
// cache.T, threads). The blocks and row math are attention_forward's: a
// segment of T rows at position 0 gives exactly attention_forward's out.
void attention_forward_cached(ThreadPool& pool, float* out, const float* q, const float* k_cache,
                              const float* v_cache, const AttentionShape& cache,
                              const AttentionSegment* segments, size_t num_segments,
                              float* scratch);

}  // namespace sc
