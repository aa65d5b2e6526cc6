#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernel_test_util.h"

namespace sc {
namespace {

using kernel_test::random_vector;

struct Inputs {
  std::vector<float> q, k, v;
};

Inputs random_inputs(const AttentionShape& s, uint32_t seed) {
  const size_t N = s.B * s.T;
  return {random_vector(N * s.Hq * s.D, seed), random_vector(N * s.Hkv * s.D, seed + 1),
          random_vector(N * s.Hkv * s.D, seed + 2)};
}

// O(T²) reference in double with the softmax materialized.
void naive_attention(const Inputs& in, const AttentionShape& s, std::vector<double>* out,
                     std::vector<double>* lse) {
  const size_t N = s.B * s.T, group = s.Hq / s.Hkv;
  out->assign(N * s.Hq * s.D, 0.0);
  lse->assign(s.B * s.Hq * s.T, 0.0);
  std::vector<double> scores(s.T);
  for (size_t b = 0; b < s.B; ++b) {
    for (size_t h = 0; h < s.Hq; ++h) {
      const size_t kvh = h / group;
      for (size_t i = 0; i < s.T; ++i) {
        const float* qi = &in.q[((b * s.T + i) * s.Hq + h) * s.D];
        double m = -1e300;
        for (size_t j = 0; j <= i; ++j) {
          const float* kj = &in.k[((b * s.T + j) * s.Hkv + kvh) * s.D];
          double dot = 0.0;
          for (size_t d = 0; d < s.D; ++d) dot += double(qi[d]) * kj[d];
          double sc = dot * s.multiplier;
          if (s.softcap > 0) sc = s.softcap * std::tanh(sc / s.softcap);
          scores[j] = sc;
          m = std::max(m, sc);
        }
        double sum = 0.0;
        for (size_t j = 0; j <= i; ++j) sum += std::exp(scores[j] - m);
        (*lse)[(b * s.Hq + h) * s.T + i] = m + std::log(sum);
        double* oi = &(*out)[((b * s.T + i) * s.Hq + h) * s.D];
        for (size_t j = 0; j <= i; ++j) {
          const double p = std::exp(scores[j] - m) / sum;
          const float* vj = &in.v[((b * s.T + j) * s.Hkv + kvh) * s.D];
          for (size_t d = 0; d < s.D; ++d) oi[d] += p * vj[d];
        }
      }
    }
  }
}

TEST(KernelAttention, ForwardMatchesNaiveReference) {
  // T = 1..70 covers a single row, partial blocks and more than one block of
  // kAttentionQueryBlock rows; GQA ratios 1 and 3; soft-cap off and on.
  static_assert(kAttentionQueryBlock < 70, "T = 1..70 must span more than one query block");
  // Tolerance: 1e-5·max(1, |ref|) for out and lse.
  ThreadPool pool(2);
  double worst_out = 0.0, worst_lse = 0.0;
  for (size_t T = 1; T <= 70; ++T) {
    for (size_t ratio : {1, 3}) {
      for (float cap : {0.0f, 2.0f}) {
        AttentionShape s{.B = 2, .T = T, .Hq = 2 * ratio, .Hkv = 2, .D = 16,
                         .multiplier = 0.5f, .softcap = cap};
        Inputs in = random_inputs(s, uint32_t(T * 10 + ratio));
        std::vector<double> ref_out, ref_lse;
        naive_attention(in, s, &ref_out, &ref_lse);
        std::vector<float> out(ref_out.size(), NAN), lse(ref_lse.size(), NAN);
        std::vector<float> scratch(attention_scratch_floats(T, pool.num_threads()));
        attention_forward(pool, out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s,
                          scratch.data());
        for (size_t i = 0; i < out.size(); ++i) {
          worst_out = std::max(worst_out, std::fabs(out[i] - ref_out[i]) /
                                              std::max(1.0, std::fabs(ref_out[i])));
        }
        for (size_t i = 0; i < lse.size(); ++i) {
          worst_lse = std::max(worst_lse, std::fabs(lse[i] - ref_lse[i]) /
                                              std::max(1.0, std::fabs(ref_lse[i])));
        }
        ASSERT_LE(worst_out, 1e-5) << "T=" << T << " ratio=" << ratio << " cap=" << cap;
        ASSERT_LE(worst_lse, 1e-5) << "T=" << T << " ratio=" << ratio << " cap=" << cap;
      }
    }
  }
  std::printf("  attention forward, T=1..70: worst out error %.3e, worst lse error %.3e "
              "(relative to max(1,|ref|))\n", worst_out, worst_lse);
}

void check_backward(const std::string& name, const AttentionShape& s, uint32_t seed) {
  ThreadPool pool(2);
  Inputs in = random_inputs(s, seed);
  const size_t N = s.B * s.T;
  auto R = random_vector(N * s.Hq * s.D, seed + 7);
  std::vector<float> out(N * s.Hq * s.D), lse(s.B * s.Hq * s.T);
  std::vector<float> scratch(attention_scratch_floats(s.T, pool.num_threads()));
  // The thousands of forward calls of the finite differences run on one
  // thread (identical results, see IdenticalForOneAndTwoThreads): waking a
  // pool that often is slow on a busy machine. The backward runs on two.
  ThreadPool fd_pool(1);
  auto loss = [&] {
    attention_forward(fd_pool, out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s,
                      scratch.data());
    return kernel_test::weighted_sum(out, R);
  };
  attention_forward(pool, out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s,
                    scratch.data());
  std::vector<float> dq(in.q.size(), 0.0f), dk(in.k.size(), 0.0f), dv(in.v.size(), 0.0f);
  attention_backward(pool, dq.data(), dk.data(), dv.data(), R.data(), in.q.data(), in.k.data(),
                     in.v.data(), out.data(), lse.data(), s, scratch.data());
  kernel_test::expect_gradient_matches(name + " dq", in.q.data(), dq.data(), dq.size(), loss);
  kernel_test::expect_gradient_matches(name + " dk", in.k.data(), dk.data(), dk.size(), loss);
  kernel_test::expect_gradient_matches(name + " dv", in.v.data(), dv.data(), dv.size(), loss);
}

TEST(KernelAttention, BackwardMatchesFiniteDifferences) {
  // Scores ~ N(0, 2): the cap of 1.0 bends them hard, so its derivative matters.
  check_backward("attn", {.B = 2, .T = 5, .Hq = 4, .Hkv = 2, .D = 8, .multiplier = 0.5f,
                          .softcap = 0.0f}, 1);
  check_backward("attn capped", {.B = 2, .T = 5, .Hq = 4, .Hkv = 2, .D = 8, .multiplier = 0.5f,
                                 .softcap = 1.0f}, 2);
  // Several query blocks, a partial last block, GQA ratio 3, MQA.
  static_assert(kAttentionQueryBlock < 67, "T = 67 must span more than one query block");
  check_backward("attn T=67 gqa3 capped", {.B = 1, .T = 67, .Hq = 3, .Hkv = 1, .D = 4,
                                           .multiplier = 0.7f, .softcap = 1.5f}, 3);
  check_backward("attn T=70 gqa1", {.B = 1, .T = 70, .Hq = 1, .Hkv = 1, .D = 4,
                                    .multiplier = 0.7f, .softcap = 0.0f}, 4);
}

TEST(KernelAttention, BackwardAccumulatesIntoGradients) {
  ThreadPool pool(2);
  AttentionShape s{.B = 2, .T = 9, .Hq = 4, .Hkv = 2, .D = 8, .multiplier = 0.4f, .softcap = 3.0f};
  Inputs in = random_inputs(s, 5);
  const size_t N = s.B * s.T;
  auto dout = random_vector(N * s.Hq * s.D, 12);
  std::vector<float> out(N * s.Hq * s.D), lse(s.B * s.Hq * s.T);
  std::vector<float> scratch(attention_scratch_floats(s.T, 2));
  attention_forward(pool, out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s,
                    scratch.data());
  std::vector<float> grads[2][3];
  for (int round = 0; round < 2; ++round) {
    std::vector<float> dq(in.q.size(), round * 1.0f), dk(in.k.size(), round * 1.0f),
        dv(in.v.size(), round * 1.0f);
    attention_backward(pool, dq.data(), dk.data(), dv.data(), dout.data(), in.q.data(),
                       in.k.data(), in.v.data(), out.data(), lse.data(), s, scratch.data());
    grads[round][0] = dq, grads[round][1] = dk, grads[round][2] = dv;
  }
  for (int g = 0; g < 3; ++g) {
    for (size_t i = 0; i < grads[0][g].size(); ++i) {
      ASSERT_NEAR(grads[1][g][i], grads[0][g][i] + 1.0f, 1e-5f);
    }
  }
}

TEST(KernelAttention, IdenticalForOneAndTwoThreads) {
  AttentionShape s{.B = 2, .T = 70, .Hq = 6, .Hkv = 2, .D = 16, .multiplier = 0.25f,
                   .softcap = 5.0f};
  Inputs in = random_inputs(s, 9);
  const size_t N = s.B * s.T;
  auto dout = random_vector(N * s.Hq * s.D, 10);
  std::vector<float> results[2][5];
  for (size_t threads : {1, 2}) {
    ThreadPool pool(threads);
    std::vector<float> out(N * s.Hq * s.D), lse(s.B * s.Hq * s.T);
    std::vector<float> dq(in.q.size(), 0.0f), dk(in.k.size(), 0.0f), dv(in.v.size(), 0.0f);
    std::vector<float> scratch(attention_scratch_floats(s.T, threads));
    attention_forward(pool, out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s,
                      scratch.data());
    attention_backward(pool, dq.data(), dk.data(), dv.data(), dout.data(), in.q.data(),
                       in.k.data(), in.v.data(), out.data(), lse.data(), s, scratch.data());
    auto& r = results[threads - 1];
    r[0] = out, r[1] = lse, r[2] = dq, r[3] = dk, r[4] = dv;
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(results[0][i], results[1][i]) << "array " << i;
}

// The cached kernels over a cache laid out like training's k, v [B, T, Hkv·D]
// (slot = sequence): every sequence as one segment at position 0 is exactly
// attention_forward (same blocks, same row math), on one or two threads.
TEST(KernelAttention, CachedFromPositionZeroEqualsTrainingForward) {
  for (size_t threads : {1, 2}) {
    ThreadPool pool(threads);
    for (float cap : {0.0f, 5.0f}) {
      AttentionShape s{.B = 3, .T = 70, .Hq = 6, .Hkv = 2, .D = 16, .multiplier = 0.25f,
                       .softcap = cap};
      Inputs in = random_inputs(s, 21);
      const size_t N = s.B * s.T;
      std::vector<float> out(N * s.Hq * s.D), lse(s.B * s.Hq * s.T);
      std::vector<float> scratch(attention_scratch_floats(s.T, threads));
      attention_forward(pool, out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s,
                        scratch.data());
      // Stored through attention_cache_store into a cache that starts as NaN.
      std::vector<float> k_cache(in.k.size(), NAN), v_cache(in.v.size(), NAN);
      std::vector<AttentionSegment> segments;
      for (size_t b = 0; b < s.B; ++b) segments.push_back({.row = b * s.T, .rows = s.T, .slot = b, .position = 0});
      attention_cache_store(k_cache.data(), v_cache.data(), in.k.data(), in.v.data(), s, segments.data(),
                            segments.size());
      EXPECT_EQ(k_cache, in.k);
      EXPECT_EQ(v_cache, in.v);
      std::vector<float> cached(out.size(), NAN);
      attention_forward_cached(pool, cached.data(), in.q.data(), k_cache.data(), v_cache.data(), s,
                               segments.data(), segments.size(), scratch.data());
      EXPECT_EQ(cached, out) << "threads=" << threads << " cap=" << cap;
    }
  }
}

// Ragged segments in a permuted order of slots, each at its own position,
// against the naive reference of the whole sequences at those rows. Cache
// rows past a segment's last position hold NaN: reading one would show.
TEST(KernelAttention, CachedSegmentsMatchNaiveReferenceAtTheirPositions) {
  ThreadPool pool(2);
  AttentionShape full{.B = 3, .T = 80, .Hq = 6, .Hkv = 2, .D = 16, .multiplier = 0.5f, .softcap = 2.0f};
  Inputs in = random_inputs(full, 31);
  std::vector<double> ref_out, ref_lse;
  naive_attention(in, full, &ref_out, &ref_lse);
  const size_t QD = full.Hq * full.D, KD = full.Hkv * full.D;
  // slot, first position, rows: a long prefill over two blocks, a decode at
  // position 0, a decode late in its sequence, a chunk in the middle.
  struct Case {
    size_t slot, position, rows;
  };
  for (const std::vector<Case>& cases : {std::vector<Case>{{2, 0, 70}, {0, 0, 1}, {1, 41, 1}},
                                         std::vector<Case>{{1, 79, 1}, {2, 12, 9}, {0, 5, 66}}}) {
    std::vector<float> q, k_cache(in.k.size(), NAN), v_cache(in.v.size(), NAN);
    std::vector<AttentionSegment> segments;
    for (const Case& c : cases) {
      segments.push_back({.row = q.size() / QD, .rows = c.rows, .slot = c.slot, .position = c.position});
      const size_t first = c.slot * full.T + c.position;
      q.insert(q.end(), in.q.begin() + first * QD, in.q.begin() + (first + c.rows) * QD);
      // The keys before the segment were cached earlier; its own rows come
      // through attention_cache_store below.
      std::copy_n(in.k.begin() + c.slot * full.T * KD, c.position * KD, k_cache.begin() + c.slot * full.T * KD);
      std::copy_n(in.v.begin() + c.slot * full.T * KD, c.position * KD, v_cache.begin() + c.slot * full.T * KD);
    }
    std::vector<float> k(q.size() / QD * KD), v(k.size());
    for (const AttentionSegment& seg : segments) {
      std::copy_n(in.k.begin() + (seg.slot * full.T + seg.position) * KD, seg.rows * KD, k.begin() + seg.row * KD);
      std::copy_n(in.v.begin() + (seg.slot * full.T + seg.position) * KD, seg.rows * KD, v.begin() + seg.row * KD);
    }
    attention_cache_store(k_cache.data(), v_cache.data(), k.data(), v.data(), full, segments.data(),
                          segments.size());
    std::vector<float> out(q.size(), NAN), scratch(attention_scratch_floats(full.T, pool.num_threads()));
    attention_forward_cached(pool, out.data(), q.data(), k_cache.data(), v_cache.data(), full, segments.data(),
                             segments.size(), scratch.data());
    double worst = 0;
    for (const AttentionSegment& seg : segments) {
      for (size_t i = 0; i < seg.rows * QD; ++i) {
        const double ref = ref_out[(seg.slot * full.T + seg.position) * QD + i];
        worst = std::max(worst, std::fabs(out[seg.row * QD + i] - ref) / std::max(1.0, std::fabs(ref)));
      }
    }
    std::printf("  cached attention, ragged segments: worst out error %.3e (relative to max(1,|ref|))\n", worst);
    EXPECT_LE(worst, 1e-5);  // NaN fails too
  }
}

}  // namespace
}  // namespace sc
