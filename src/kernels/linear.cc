#include "kernels/linear.h"

#include <cblas.h>
#if defined(__AVX2__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns of an uninitialized variable inside its own AVX-512
// conversion intrinsics (a known false positive of its headers).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/vec.h"

namespace sc {
namespace {

using vec::F16;
using vec::kLanes;

typedef uint16_t U16x16 __attribute__((vector_size(kLanes * sizeof(uint16_t))));
typedef uint32_t U32x16 __attribute__((vector_size(kLanes * sizeof(uint32_t))));
typedef int8_t I8x16 __attribute__((vector_size(kLanes * sizeof(int8_t))));
typedef int32_t I32x16 __attribute__((vector_size(kLanes * sizeof(int32_t))));

static_assert(kInt8BlockSize % kLanes == 0, "a vector of weights lies in one int8 block");

// Rows of W in tiles of this many: four weight streams per thread keep the
// memory system busy, and 4 x 4 accumulators fit the registers.
constexpr size_t kTileRows = 4;
// Rows of x per pass over a tile.
constexpr size_t kTileInputs = 4;
// Rows of W a thread works through while each group of x rows passes over
// them: 64 rows of K = 4096 fp32 weights (1 MiB) stay in L2 between passes.
constexpr size_t kBlockRows = 64;
// Threads get parts of W in multiples of this many rows.
constexpr size_t kRowGrain = 16;
// Below this many multiply-adds a call runs on the calling thread.
constexpr size_t kMinParallelMacs = 1u << 16;

// Sum of 16 lanes as a tree (lane i + lane i+8, then i + i+4, ...): a fixed
// order, and four dependent adds instead of fifteen, in vector halves (a
// loop over an array made GCC go through memory, 12% of a decode step).
typedef float F8 __attribute__((vector_size(8 * sizeof(float))));
typedef float F4 __attribute__((vector_size(4 * sizeof(float))));
inline float tree_sum(F16 v) {
  F8 lo8, hi8;
  __builtin_memcpy(&lo8, &v, sizeof(lo8));
  __builtin_memcpy(&hi8, reinterpret_cast<const char*>(&v) + sizeof(lo8), sizeof(hi8));
  const F8 s8 = lo8 + hi8;
  F4 lo4, hi4;
  __builtin_memcpy(&lo4, &s8, sizeof(lo4));
  __builtin_memcpy(&hi4, reinterpret_cast<const char*>(&s8) + sizeof(lo4), sizeof(hi4));
  const F4 s4 = lo4 + hi4;
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

// 16 int8 at p as fp32. GCC 12 turns __builtin_convertvector from int8 into
// sixteen scalar conversions, so the x86 sign extension is spelled out.
inline F16 int8_to_float(const int8_t* p) {
#if defined(__AVX512F__)
  const __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#elif defined(__AVX2__)
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  struct {
    __m256 lo, hi;
  } f = {_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)),
         _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(bytes, bytes)))};
#else
  I8x16 q;
  __builtin_memcpy(&q, p, sizeof(q));
  const I32x16 f = __builtin_convertvector(q, I32x16);
  return __builtin_convertvector(f, F16);
#endif
#if defined(__AVX512F__) || defined(__AVX2__)
  F16 v;
  static_assert(sizeof(f) == sizeof(v));
  __builtin_memcpy(&v, &f, sizeof(v));
  return v;
#endif
}

// 16 bf16 at p as fp32: zero-extended to 32 bits, shifted into the upper
// half (what GCC 12 makes of the vector-extension spelling takes three
// instructions more).
inline F16 bf16_to_float(const uint16_t* p) {
#if defined(__AVX512F__)
  const __m512i bits =
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16);
#elif defined(__AVX2__)
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8));
  struct {
    __m256i lo, hi;
  } bits = {_mm256_slli_epi32(_mm256_cvtepu16_epi32(lo), 16), _mm256_slli_epi32(_mm256_cvtepu16_epi32(hi), 16)};
#else
  U16x16 h;
  __builtin_memcpy(&h, p, sizeof(h));
  const U32x16 bits = __builtin_convertvector(h, U32x16) << 16;
#endif
  F16 f;
  static_assert(sizeof(bits) == sizeof(f));
  __builtin_memcpy(&f, &bits, sizeof(f));
  return f;
}

// What the kernel reads of W in each format: 16 weights of row n from column
// k (a multiple of 16) as fp32, or one weight.
template <WeightFormat F>
struct Weights;

template <>
struct Weights<WeightFormat::kF32> {
  const float* w;
  size_t K;
  static constexpr size_t kBytes = sizeof(float);
  explicit Weights(const WeightMatrix& m, size_t k) : w(static_cast<const float*>(m.data)), K(k) {}
  const void* address(size_t n, size_t k) const { return w + n * K + k; }
  F16 load(size_t n, size_t k) const { return vec::load(w + n * K + k); }
  float at(size_t n, size_t k) const { return w[n * K + k]; }
};

template <>
struct Weights<WeightFormat::kBf16> {
  const uint16_t* w;
  size_t K;
  static constexpr size_t kBytes = sizeof(uint16_t);
  explicit Weights(const WeightMatrix& m, size_t k) : w(static_cast<const uint16_t*>(m.data)), K(k) {}
  const void* address(size_t n, size_t k) const { return w + n * K + k; }
  F16 load(size_t n, size_t k) const { return bf16_to_float(w + n * K + k); }
  float at(size_t n, size_t k) const { return float_from_bf16(w[n * K + k]); }
};

template <>
struct Weights<WeightFormat::kInt8> {
  const int8_t* w;
  const float* scales;
  size_t K, blocks;
  static constexpr size_t kBytes = sizeof(int8_t);
  explicit Weights(const WeightMatrix& m, size_t k)
      : w(static_cast<const int8_t*>(m.data)), scales(m.scales), K(k), blocks(int8_blocks_per_row(k)) {}
  const void* address(size_t n, size_t k) const { return w + n * K + k; }
  F16 load(size_t n, size_t k) const {
    return int8_to_float(w + n * K + k) * scales[n * blocks + k / kInt8BlockSize];
  }
  float at(size_t n, size_t k) const {
    return static_cast<float>(w[n * K + k]) * scales[n * blocks + k / kInt8BlockSize];
  }
};

// out[m, n0 + r] (=|+=) Σ_k x[m, k]·W[n0 + r, k] for r < NR, m < MR: every
// output is one dot product, summed in 16 lanes along k, then the lanes as a
// tree, then the columns past the last multiple of 16.
//
// prefetch_next: the NR rows after these are read next; each cache line of
// them is requested while the same line of these is read. The hardware
// prefetcher alone kept int8 decode at half the bandwidth fp32 reached: a
// line of int8 weights takes four steps of this loop, so the out-of-order
// window held a quarter of the misses in flight.
template <WeightFormat F, size_t NR, size_t MR>
inline void tile(const Weights<F>& w, const float* x, size_t K, size_t n0, float* out, size_t N, bool accumulate,
                 bool prefetch_next) {
  F16 acc[MR][NR];
  for (auto& row : acc) {
    for (auto& a : row) a = vec::splat(0.0f);
  }
  auto step = [&](size_t k) __attribute__((always_inline)) {
    F16 wv[NR];
    for (size_t r = 0; r < NR; ++r) wv[r] = w.load(n0 + r, k);
    for (size_t m = 0; m < MR; ++m) {
      const F16 xv = vec::load(x + m * K + k);
      for (size_t r = 0; r < NR; ++r) acc[m][r] += wv[r] * xv;
    }
  };
  constexpr size_t kLineWeights = 64 / Weights<F>::kBytes;
  size_t k = 0;
  for (; k + kLineWeights <= K; k += kLineWeights) {
    if (prefetch_next) {
      for (size_t r = 0; r < NR; ++r) __builtin_prefetch(w.address(n0 + NR + r, k));
    }
    for (size_t v = 0; v < kLineWeights; v += kLanes) step(k + v);
  }
  for (; k + kLanes <= K; k += kLanes) step(k);
  for (size_t m = 0; m < MR; ++m) {
    for (size_t r = 0; r < NR; ++r) {
      float s = tree_sum(acc[m][r]);
      for (size_t kk = k; kk < K; ++kk) s += w.at(n0 + r, kk) * x[m * K + kk];
      float& o = out[m * N + n0 + r];
      o = accumulate ? o + s : s;
    }
  }
}

// Rows [n_begin, n_end) of out for MR rows of x.
template <WeightFormat F, size_t MR>
void rows_for_inputs(const Weights<F>& w, const float* x, size_t K, size_t n_begin, size_t n_end, float* out,
                     size_t N, bool accumulate) {
  size_t n = n_begin;
  for (; n + kTileRows <= n_end; n += kTileRows) {
    tile<F, kTileRows, MR>(w, x, K, n, out, N, accumulate, n + 2 * kTileRows <= n_end);
  }
  for (; n < n_end; ++n) tile<F, 1, MR>(w, x, K, n, out, N, accumulate, false);
}

template <WeightFormat F>
void rowwise(const WeightMatrix& W, const float* x, size_t M, size_t K, size_t n_begin, size_t n_end, float* out,
             size_t N, bool accumulate) {
  const Weights<F> w(W, K);
  for (size_t block = n_begin; block < n_end; block += kBlockRows) {
    const size_t block_end = std::min(n_end, block + kBlockRows);
    size_t m = 0;
    for (; m + kTileInputs <= M; m += kTileInputs) {
      rows_for_inputs<F, kTileInputs>(w, x + m * K, K, block, block_end, out + m * N, N, accumulate);
    }
    switch (M - m) {
      case 1: rows_for_inputs<F, 1>(w, x + m * K, K, block, block_end, out + m * N, N, accumulate); break;
      case 2: rows_for_inputs<F, 2>(w, x + m * K, K, block, block_end, out + m * N, N, accumulate); break;
      case 3: rows_for_inputs<F, 3>(w, x + m * K, K, block, block_end, out + m * N, N, accumulate); break;
      default: break;
    }
  }
}

void rowwise_rows(const WeightMatrix& W, const float* x, size_t M, size_t K, size_t n_begin, size_t n_end,
                  float* out, size_t N, bool accumulate) {
  switch (W.format) {
    case WeightFormat::kF32: rowwise<WeightFormat::kF32>(W, x, M, K, n_begin, n_end, out, N, accumulate); break;
    case WeightFormat::kBf16: rowwise<WeightFormat::kBf16>(W, x, M, K, n_begin, n_end, out, N, accumulate); break;
    case WeightFormat::kInt8: rowwise<WeightFormat::kInt8>(W, x, M, K, n_begin, n_end, out, N, accumulate); break;
  }
}

// Rows [n_begin, n_end) of out through sgemm, W converted to fp32 a block of
// kBlockRows rows at a time into this thread's buffer.
void unpacked_gemm_rows(const WeightMatrix& W, const float* x, size_t M, size_t K, size_t n_begin, size_t n_end,
                        float* out, size_t N, bool accumulate) {
  thread_local std::vector<float> block_buffer;
  block_buffer.resize(kBlockRows * K);
  for (size_t block = n_begin; block < n_end; block += kBlockRows) {
    const size_t rows = std::min(n_end, block + kBlockRows) - block;
    unpack_weight_rows(W, block, rows, K, block_buffer.data());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(rows), int(K), 1.0f, x, int(K),
                block_buffer.data(), int(K), accumulate ? 1.0f : 0.0f, out + block, int(N));
  }
}

// Part `part` of `parts` of [0, count), boundaries on multiples of `grain`.
void part_range(size_t count, size_t parts, size_t part, size_t grain, size_t* begin, size_t* end) {
  const size_t units = (count + grain - 1) / grain;
  const size_t base = units / parts, extra = units % parts;
  const size_t ubegin = part * base + std::min(part, extra);
  const size_t uend = ubegin + base + (part < extra ? 1 : 0);
  *begin = std::min(count, ubegin * grain);
  *end = std::min(count, uend * grain);
}

}  // namespace

void linear_forward(ThreadPool& pool, float* out, const float* x, const WeightMatrix& W, size_t M, size_t N,
                    size_t K, bool accumulate) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate) std::fill(out, out + M * N, 0.0f);
    return;
  }
  if (M > kRowwiseMaxRows && W.format == WeightFormat::kF32) {
    matmul_forward(pool, out, x, static_cast<const float*>(W.data), M, N, K, accumulate);
    return;
  }
  const bool rowwise_kernel = M <= kRowwiseMaxRows;
  if (!rowwise_kernel) blas_init_single_threaded();
  const size_t units = (N + kRowGrain - 1) / kRowGrain;
  const size_t parts = M * N * K < kMinParallelMacs ? 1 : std::min(pool.num_threads(), units);
  auto run = [&](size_t part) {
    size_t b, e;
    part_range(N, parts, part, kRowGrain, &b, &e);
    if (b == e) return;
    if (rowwise_kernel) {
      rowwise_rows(W, x, M, K, b, e, out, N, accumulate);
    } else {
      unpacked_gemm_rows(W, x, M, K, b, e, out, N, accumulate);
    }
  };
  if (parts == 1) {
    run(0);
    return;
  }
  pool.parallel_for(parts, [&](size_t begin, size_t end, size_t) {
    for (size_t part = begin; part < end; ++part) run(part);
  });
}

Status pack_weight_matrix(ThreadPool& pool, WeightFormat format, const float* src, size_t N, size_t K, void* data,
                          float* scales, const char* name) {
  std::atomic<size_t> bad_row{N};
  const size_t blocks = int8_blocks_per_row(K);
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    for (size_t n = begin; n < end; ++n) {
      const float* row = src + n * K;
      bool finite = true;
      for (size_t k = 0; k < K; ++k) finite &= std::isfinite(row[k]);
      if (!finite) {
        size_t expected = N;
        while (n < expected && !bad_row.compare_exchange_weak(expected, n)) {
        }
        continue;
      }
      switch (format) {
        case WeightFormat::kF32: std::copy_n(row, K, static_cast<float*>(data) + n * K); break;
        case WeightFormat::kBf16: {
          uint16_t* out = static_cast<uint16_t*>(data) + n * K;
          for (size_t k = 0; k < K; ++k) out[k] = bf16_from_float(row[k]);
          break;
        }
        case WeightFormat::kInt8: {
          int8_t* out = static_cast<int8_t*>(data) + n * K;
          for (size_t b = 0; b < blocks; ++b) {
            const size_t k0 = b * kInt8BlockSize, k1 = std::min(K, k0 + kInt8BlockSize);
            float max_abs = 0.0f;
            for (size_t k = k0; k < k1; ++k) max_abs = std::max(max_abs, std::fabs(row[k]));
            const float scale = int8_block_scale(max_abs);
            scales[n * blocks + b] = scale;
            for (size_t k = k0; k < k1; ++k) out[k] = int8_quantize(row[k], scale);
          }
          break;
        }
      }
    }
  });
  if (bad_row.load() < N) {
    return Status::invalid("{}: row {} has a weight that is not finite (NaN or infinity); cannot convert it to {}",
                           name, bad_row.load(), weight_format_name(format));
  }
  return Status::ok_status();
}

void unpack_weight_rows(const WeightMatrix& W, size_t n0, size_t rows, size_t K, float* out) {
  auto unpack = [&](const auto& w) {
    for (size_t r = 0; r < rows; ++r) {
      for (size_t k = 0; k < K; ++k) out[r * K + k] = w.at(n0 + r, k);
    }
  };
  switch (W.format) {
    case WeightFormat::kF32: unpack(Weights<WeightFormat::kF32>(W, K)); break;
    case WeightFormat::kBf16: unpack(Weights<WeightFormat::kBf16>(W, K)); break;
    case WeightFormat::kInt8: unpack(Weights<WeightFormat::kInt8>(W, K)); break;
  }
}

}  // namespace sc
