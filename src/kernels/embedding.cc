#include "kernels/embedding.h"

namespace sc {

Status embedding_forward(ThreadPool& pool, float* out, const uint32_t* tokens, const float* E,
                         size_t N, size_t V, size_t C, float multiplier) {
  for (size_t n = 0; n < N; ++n) {
    if (tokens[n] >= V) {
      return Status::invalid("embedding: token {} at position {} is outside the vocabulary of {}",
                             tokens[n], n, V);
    }
  }
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    for (size_t n = begin; n < end; ++n) {
      const float* __restrict row = E + size_t{tokens[n]} * C;
      float* __restrict y = out + n * C;
      for (size_t c = 0; c < C; ++c) y[c] = row[c] * multiplier;
    }
  });
  return Status::ok_status();
}

void embedding_backward(ThreadPool& pool, float* dE, const float* dout, const uint32_t* tokens,
                        size_t N, size_t C, float multiplier) {
  // Column slices of 16 floats (a cache line) so threads never share a line.
  constexpr size_t kGrain = 16;
  const size_t units = (C + kGrain - 1) / kGrain;
  pool.parallel_for(units, [&](size_t begin, size_t end, size_t) {
    const size_t c0 = begin * kGrain, c1 = end * kGrain < C ? end * kGrain : C;
    for (size_t n = 0; n < N; ++n) {
      float* __restrict drow = dE + size_t{tokens[n]} * C;
      const float* __restrict g = dout + n * C;
      for (size_t c = c0; c < c1; ++c) drow[c] += multiplier * g[c];
    }
  });
}

}  // namespace sc
