#include "kernels/rmsnorm.h"

#include <algorithm>

#include "kernels/device_math.h"
#include "kernels/vec.h"

namespace sc {
namespace {

// dweight is reduced over this many fixed row blocks (fewer when N is small).
constexpr size_t kMaxRowBlocks = 64;

size_t row_blocks(size_t N) { return std::min(N, kMaxRowBlocks); }

// Rows of block `block`: a split of [0, N) that depends only on N.
void block_rows(size_t N, size_t block, size_t* begin, size_t* end) {
  size_t blocks = row_blocks(N);
  size_t base = N / blocks, extra = N % blocks;
  *begin = block * base + std::min(block, extra);
  *end = *begin + base + (block < extra ? 1 : 0);
}

}  // namespace

void rmsnorm_forward(ThreadPool& pool, float* out, float* rstd, const float* x,
                     const float* weight, size_t N, size_t C, float eps) {
  pool.parallel_for(N, [&](size_t begin, size_t end, size_t) {
    for (size_t n = begin; n < end; ++n) {
      const float* xr = x + n * C;
      float* yr = out + n * C;
      const float r = rmsnorm_rstd(vec::dot(xr, xr, C), static_cast<int>(C), eps);
      rstd[n] = r;
      for (size_t c = 0; c < C; ++c) yr[c] = xr[c] * r * weight[c];
    }
  });
}

size_t rmsnorm_backward_scratch_floats(size_t N, size_t C) { return row_blocks(N) * C; }

void rmsnorm_backward(ThreadPool& pool, float* dx, float* dweight, const float* dout,
                      const float* x, const float* weight, const float* rstd, size_t N,
                      size_t C, float* scratch) {
  if (N == 0) return;
  const size_t blocks = row_blocks(N);
  const float inv_c = 1.0f / static_cast<float>(C);
  pool.parallel_for(blocks, [&](size_t block_begin, size_t block_end, size_t) {
    for (size_t block = block_begin; block < block_end; ++block) {
      float* partial = scratch + block * C;
      std::fill(partial, partial + C, 0.0f);
      size_t row_begin, row_end;
      block_rows(N, block, &row_begin, &row_end);
      for (size_t n = row_begin; n < row_end; ++n) {
        const float* xr = x + n * C;
        const float* dyr = dout + n * C;
        float* dxr = dx + n * C;
        const float r = rstd[n];
        // y = x·r·w; with g = dy·w: dx = r·g − r³·x·(Σ g·x)/C.
        const float gx_mean = vec::dot3(dyr, weight, xr, C) * inv_c;
        const float k = r * r * r * gx_mean;
        for (size_t c = 0; c < C; ++c) {
          dxr[c] += r * dyr[c] * weight[c] - k * xr[c];
          partial[c] += dyr[c] * xr[c] * r;
        }
      }
    }
  });
  // Fixed-order reduction of the block partials, split over columns.
  pool.parallel_for(C, [&](size_t c_begin, size_t c_end, size_t) {
    for (size_t block = 0; block < blocks; ++block) {
      const float* partial = scratch + block * C;
      for (size_t c = c_begin; c < c_end; ++c) dweight[c] += partial[c];
    }
  });
}

}  // namespace sc
