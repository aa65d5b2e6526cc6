#include "kernels/matmul.h"

#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <mutex>

namespace sc {
namespace {

// Below this many multiply-adds a call runs on the calling thread: waking the
// pool costs more than it saves.
constexpr size_t kMinParallelMacs = 1u << 18;
// A thread's slice is at least this many rows (and a multiple of it where the
// split allows): sgemm kernels work on register tiles of 8 or 16 rows.
constexpr size_t kRowGrain = 16;

// Part `part` of `parts` of [0, count), boundaries on multiples of `grain`.
void part_range(size_t count, size_t parts, size_t part, size_t grain, size_t* begin,
                size_t* end) {
  size_t units = (count + grain - 1) / grain;
  size_t base = units / parts, extra = units % parts;
  size_t ubegin = part * base + std::min(part, extra);
  size_t uend = ubegin + base + (part < extra ? 1 : 0);
  *begin = std::min(count, ubegin * grain);
  *end = std::min(count, uend * grain);
}

// How many threads to use for splitting `count` rows of `macs` multiply-adds.
size_t useful_parts(const ThreadPool& pool, size_t count, size_t macs) {
  if (macs < kMinParallelMacs) return 1;
  return std::max<size_t>(1, std::min(pool.num_threads(), count / kRowGrain));
}

std::once_flag blas_once;

}  // namespace

void blas_init_single_threaded() {
  std::call_once(blas_once, [] { openblas_set_num_threads(1); });
}

std::string blas_description() {
  blas_init_single_threaded();
  const char* config = openblas_get_config();
  const char* core = openblas_get_corename();
  return fmt::format("{} (core {}, {} thread)", config ? config : "?",
                     core ? core : "?", openblas_get_num_threads());
}

void matmul_forward(ThreadPool& pool, float* out, const float* x, const float* W, size_t M,
                    size_t N, size_t K, bool accumulate) {
  if (M == 0 || N == 0) return;
  blas_init_single_threaded();
  const float beta = accumulate ? 1.0f : 0.0f;
  if (K == 0) {
    if (!accumulate) std::fill(out, out + M * N, 0.0f);
    return;
  }
  const size_t macs = M * N * K;
  // Split rows of x when there are enough, else columns of out (rows of W).
  const bool split_rows = M >= N || M / kRowGrain >= pool.num_threads();
  const size_t parts = useful_parts(pool, split_rows ? M : N, macs);
  auto run = [&](size_t part) {
    size_t b, e;
    if (split_rows) {
      part_range(M, parts, part, kRowGrain, &b, &e);
      if (b == e) return;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(e - b), int(N), int(K), 1.0f,
                  x + b * K, int(K), W, int(K), beta, out + b * N, int(N));
    } else {
      part_range(N, parts, part, kRowGrain, &b, &e);
      if (b == e) return;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(e - b), int(K), 1.0f, x,
                  int(K), W + b * K, int(K), beta, out + b, int(N));
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

void matmul_backward(ThreadPool& pool, float* dx, float* dW, const float* dy, const float* x,
                     const float* W, size_t M, size_t N, size_t K) {
  if (M == 0 || N == 0 || K == 0) return;
  blas_init_single_threaded();
  const size_t macs = M * N * K;
  // dx[M, K] += dy[M, N] · W[N, K]: split over rows M (or columns K if M is small).
  const bool dx_split_rows = M >= K || M / kRowGrain >= pool.num_threads();
  const size_t dx_parts = useful_parts(pool, dx_split_rows ? M : K, macs);
  // dW[N, K] += dyᵀ[N, M] · x[M, K]: split over rows N (or columns K if N is small).
  const bool dw_split_rows = N >= K || N / kRowGrain >= pool.num_threads();
  const size_t dw_parts = useful_parts(pool, dw_split_rows ? N : K, macs);

  auto run_dx = [&](size_t part) {
    size_t b, e;
    if (dx_split_rows) {
      part_range(M, dx_parts, part, kRowGrain, &b, &e);
      if (b == e) return;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(e - b), int(K), int(N), 1.0f,
                  dy + b * N, int(N), W, int(K), 1.0f, dx + b * K, int(K));
    } else {
      part_range(K, dx_parts, part, kRowGrain, &b, &e);
      if (b == e) return;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(e - b), int(N), 1.0f,
                  dy, int(N), W + b, int(K), 1.0f, dx + b, int(K));
    }
  };
  auto run_dw = [&](size_t part) {
    size_t b, e;
    if (dw_split_rows) {
      part_range(N, dw_parts, part, kRowGrain, &b, &e);
      if (b == e) return;
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(e - b), int(K), int(M), 1.0f,
                  dy + b, int(N), x, int(K), 1.0f, dW + b * K, int(K));
    } else {
      part_range(K, dw_parts, part, kRowGrain, &b, &e);
      if (b == e) return;
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(N), int(e - b), int(M), 1.0f,
                  dy, int(N), x + b, int(K), 1.0f, dW + b, int(K));
    }
  };
  const size_t parts = std::max(dx ? dx_parts : 1, dW ? dw_parts : 1);
  if (parts == 1) {
    if (dx) run_dx(0);
    if (dW) run_dw(0);
    return;
  }
  // One pass over the pool: thread t does part t of dx, then part t of dW.
  pool.parallel_for(parts, [&](size_t begin, size_t end, size_t) {
    for (size_t part = begin; part < end; ++part) {
      if (dx && part < dx_parts) run_dx(part);
      if (dW && part < dw_parts) run_dw(part);
    }
  });
}

}  // namespace sc
