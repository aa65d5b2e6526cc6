#include "kernels/attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "kernels/device_math.h"
#include "kernels/matmul.h"
#include "kernels/vec.h"

namespace sc {
namespace {

constexpr size_t kBlock = kAttentionQueryBlock;

size_t query_blocks(size_t T) { return (T + kBlock - 1) / kBlock; }

// Item order inside one (b, h): blocks 0, nb−1, 1, nb−2, ... so that a
// contiguous range of items mixes short (early) and long (late) causal rows.
size_t interleaved_block(size_t r, size_t nb) { return (r % 2 == 0) ? r / 2 : nb - 1 - r / 2; }

// Turns row[0, valid) of scaled scores into softmax probabilities in place
// (soft-capped first when cap > 0), zeroes row[valid, width), returns the
// log-sum-exp of the (capped) scores.
float softmax_row(float* row, size_t valid, size_t width, float cap) {
  if (cap > 0.0f) {
    for (size_t j = 0; j < valid; ++j) row[j] = softcap(row[j], cap);
  }
  const float m = vec::max(row, valid);
  for (size_t j = 0; j < valid; ++j) row[j] = exp_fast(row[j] - m);
  const float sum = vec::sum(row, valid);
  const float inv = 1.0f / sum;
  for (size_t j = 0; j < valid; ++j) row[j] *= inv;
  std::fill(row + valid, row + width, 0.0f);
  return m + std::log(sum);
}

// Backward of one softmax row, in place. On entry s holds the scaled scores
// (multiplier · q·k) and dp = dO·V; on return s holds dS = ∂L/∂(q·k) and dp
// holds P. lse is the row's log-sum-exp, delta = dO·O.
void score_row_backward(float* __restrict s, float* __restrict dp, size_t valid, float lse,
                        float delta, float multiplier, float cap) {
  if (cap > 0.0f) {
    // Two loops: fused with the one below, GCC does not vectorize.
    for (size_t j = 0; j < valid; ++j) s[j] = softcap(s[j], cap);
    for (size_t j = 0; j < valid; ++j) {
      const float c = s[j];
      const float p = exp_fast(c - lse);
      s[j] = p * (dp[j] - delta) * softcap_grad_from_output(c, cap) * multiplier;
      dp[j] = p;
    }
  } else {
    for (size_t j = 0; j < valid; ++j) {
      const float p = exp_fast(s[j] - lse);
      s[j] = p * (dp[j] - delta) * multiplier;
      dp[j] = p;
    }
  }
}

// One block of `rows` query rows (Q, O with stride Hq·D) of one head against
// keys 0..keys−1 (K, V with stride Hkv·D); the block's last row is the
// query at position keys − 1, so row r sees keys − rows + r + 1 keys. Writes
// O and, when lse is not null, the rows' log-sum-exp lse[0, rows).
void attend_block(float* O, float* lse, const float* Q, const float* K, const float* V, size_t rows,
                  size_t keys, const AttentionShape& shape, float* scores) {
  const size_t D = shape.D, ldq = shape.Hq * D, ldkv = shape.Hkv * D;
  // scores[rows, keys] = multiplier · Q Kᵀ
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(keys), int(D),
              shape.multiplier, Q, int(ldq), K, int(ldkv), 0.0f, scores, int(keys));
  for (size_t r = 0; r < rows; ++r) {
    const float l = softmax_row(scores + r * keys, keys - rows + r + 1, keys, shape.softcap);
    if (lse != nullptr) lse[r] = l;
  }
  // O[rows, D] = P V
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(D), int(keys), 1.0f,
              scores, int(keys), V, int(ldkv), 0.0f, O, int(ldq));
}

}  // namespace

size_t attention_scratch_floats(size_t T, size_t num_threads) {
  return 2 * kBlock * T * num_threads;
}

void attention_forward(ThreadPool& pool, float* out, float* lse, const float* q, const float* k,
                       const float* v, const AttentionShape& shape, float* scratch) {
  const size_t B = shape.B, T = shape.T, Hq = shape.Hq, Hkv = shape.Hkv, D = shape.D;
  if (B == 0 || T == 0 || Hq == 0) return;
  blas_init_single_threaded();
  const size_t group = Hq / Hkv;
  const size_t ldq = Hq * D, ldkv = Hkv * D;
  const size_t nb = query_blocks(T);
  const size_t per_thread = 2 * kBlock * T;
  pool.parallel_for(B * Hq * nb, [&](size_t begin, size_t end, size_t thread) {
    float* scores = scratch + thread * per_thread;
    for (size_t item = begin; item < end; ++item) {
      const size_t bh = item / nb, qb = interleaved_block(item % nb, nb);
      const size_t b = bh / Hq, h = bh % Hq, kvh = h / group;
      const size_t i0 = qb * kBlock, i1 = std::min(T, i0 + kBlock);
      attend_block(out + (b * T + i0) * ldq + h * D, lse + (b * Hq + h) * T + i0,
                   q + (b * T + i0) * ldq + h * D, k + b * T * ldkv + kvh * D,
                   v + b * T * ldkv + kvh * D, i1 - i0, i1, shape, scores);
    }
  });
}

void attention_backward(ThreadPool& pool, float* dq, float* dk, float* dv, const float* dout,
                        const float* q, const float* k, const float* v, const float* out,
                        const float* lse, const AttentionShape& shape, float* scratch) {
  const size_t B = shape.B, T = shape.T, Hq = shape.Hq, Hkv = shape.Hkv, D = shape.D;
  if (B == 0 || T == 0 || Hq == 0) return;
  blas_init_single_threaded();
  const size_t group = Hq / Hkv;
  const size_t ldq = Hq * D, ldkv = Hkv * D;
  const size_t nb = query_blocks(T);
  const size_t per_thread = 2 * kBlock * T;
  const float multiplier = shape.multiplier, cap = shape.softcap;
  pool.parallel_for(B * Hkv, [&](size_t begin, size_t end, size_t thread) {
    float* ds_tile = scratch + thread * per_thread;  // scores, then dS
    float* p_tile = ds_tile + kBlock * T;            // dP, then P
    for (size_t item = begin; item < end; ++item) {
      const size_t b = item / Hkv, kvh = item % Hkv;
      const float* K = k + b * T * ldkv + kvh * D;
      const float* V = v + b * T * ldkv + kvh * D;
      float* dK = dk + b * T * ldkv + kvh * D;
      float* dV = dv + b * T * ldkv + kvh * D;
      for (size_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        const float* lse_row = lse + (b * Hq + h) * T;
        for (size_t qb = 0; qb < nb; ++qb) {
          const size_t i0 = qb * kBlock, i1 = std::min(T, i0 + kBlock);
          const size_t rows = i1 - i0, keys = i1;
          const size_t offset = (b * T + i0) * ldq + h * D;
          const float* Q = q + offset;
          const float* O = out + offset;
          const float* dO = dout + offset;
          float* dQ = dq + offset;
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(keys), int(D),
                      multiplier, Q, int(ldq), K, int(ldkv), 0.0f, ds_tile, int(keys));
          // dP = dO Vᵀ
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(keys), int(D), 1.0f,
                      dO, int(ldq), V, int(ldkv), 0.0f, p_tile, int(keys));
          for (size_t r = 0; r < rows; ++r) {
            const size_t valid = i0 + r + 1;
            float* s = ds_tile + r * keys;
            float* dp = p_tile + r * keys;
            // Δ_i = Σ_j P_ij dP_ij = dO_i · O_i
            const float delta = vec::dot(dO + r * ldq, O + r * ldq, D);
            const float l = lse_row[i0 + r];
            score_row_backward(s, dp, valid, l, delta, multiplier, cap);
            std::fill(s + valid, s + keys, 0.0f);
            std::fill(dp + valid, dp + keys, 0.0f);
          }
          // dV[keys, D] += Pᵀ dO
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(keys), int(D), int(rows), 1.0f,
                      p_tile, int(keys), dO, int(ldq), 1.0f, dV, int(ldkv));
          // dQ[rows, D] += dS K
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(D), int(keys),
                      1.0f, ds_tile, int(keys), K, int(ldkv), 1.0f, dQ, int(ldq));
          // dK[keys, D] += dSᵀ Q
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(keys), int(D), int(rows), 1.0f,
                      ds_tile, int(keys), Q, int(ldq), 1.0f, dK, int(ldkv));
        }
      }
    }
  });
}

void attention_cache_store(float* k_cache, float* v_cache, const float* k, const float* v,
                           const AttentionShape& cache, const AttentionSegment* segments,
                           size_t num_segments) {
  const size_t ldkv = cache.Hkv * cache.D;
  for (size_t s = 0; s < num_segments; ++s) {
    const AttentionSegment& seg = segments[s];
    const size_t to = (seg.slot * cache.T + seg.position) * ldkv, from = seg.row * ldkv;
    std::copy_n(k + from, seg.rows * ldkv, k_cache + to);
    std::copy_n(v + from, seg.rows * ldkv, v_cache + to);
  }
}

void attention_forward_cached(ThreadPool& pool, float* out, const float* q, const float* k_cache,
                              const float* v_cache, const AttentionShape& cache,
                              const AttentionSegment* segments, size_t num_segments,
                              float* scratch) {
  const size_t T = cache.T, Hq = cache.Hq, Hkv = cache.Hkv, D = cache.D;
  if (num_segments == 0 || Hq == 0) return;
  blas_init_single_threaded();
  const size_t group = Hq / Hkv;
  const size_t ldq = Hq * D, ldkv = Hkv * D;
  const size_t per_thread = 2 * kBlock * T;
  // Items are (segment, head, query block), segment by segment.
  size_t items = 0;
  for (size_t s = 0; s < num_segments; ++s) items += Hq * query_blocks(segments[s].rows);
  pool.parallel_for(items, [&](size_t begin, size_t end, size_t thread) {
    float* scores = scratch + thread * per_thread;
    size_t s = 0, first_item = 0;  // segment of `item` and its first item
    for (size_t item = begin; item < end; ++item) {
      while (item >= first_item + Hq * query_blocks(segments[s].rows)) {
        first_item += Hq * query_blocks(segments[s].rows);
        ++s;
      }
      const AttentionSegment& seg = segments[s];
      const size_t nb = query_blocks(seg.rows), local = item - first_item;
      const size_t h = local / nb, qb = interleaved_block(local % nb, nb), kvh = h / group;
      const size_t i0 = qb * kBlock, i1 = std::min(seg.rows, i0 + kBlock);
      const size_t row = seg.row + i0, kv_base = seg.slot * T * ldkv + kvh * D;
      attend_block(out + row * ldq + h * D, nullptr, q + row * ldq + h * D, k_cache + kv_base,
                   v_cache + kv_base, i1 - i0, seg.position + i1, cache, scores);
    }
  });
}

}  // namespace sc
