// Linear layers y = x·Wᵀ of inference, over weights in any WeightFormat
// (kernels/weight_format.h): fp32, bf16, or int8 with block scales, always
// multiplied and summed in fp32 (weight-only quantization: activations stay
// fp32).
//
// Decode multiplies a few rows of x (one per sequence of the batch) by every
// weight of the model: it is memory-bound, and its speed is the bytes of W
// read per token. The row-wise kernel here streams W once per call, four rows
// of it at a time, converting each 16 weights to fp32 in registers and
// multiplying them by up to four rows of x; it never touches a GEMM's packing
// buffers. Each output element is one dot product whose summation order
// depends only on K: a row of out is the same whatever M is, so a sequence's
// tokens do not depend on the batch it decodes in.
//
// Many rows (a prefill) are compute-bound instead: they go to OpenBLAS's
// sgemm, on the fp32 weights directly, or on blocks of W converted to fp32
// in a per-thread buffer (the conversion then costs 1/M of the multiply).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/weight_format.h"

namespace sc {

// Up to this many rows of x take the row-wise kernel, more take sgemm.
// Inference::decode keeps its batches at or under it, so a decoded token's
// arithmetic never depends on the batch size.
inline constexpr size_t kRowwiseMaxRows = 32;

// out[M, N] = x[M, K] · Wᵀ   (accumulate = false: out is overwritten)
// out[M, N] += x[M, K] · Wᵀ  (accumulate = true)
// W is [N, K] in W.format. Work is split over the pool by rows of W.
void linear_forward(ThreadPool& pool, float* out, const float* x, const WeightMatrix& W, size_t M, size_t N,
                    size_t K, bool accumulate);

// Packs the fp32 matrix src [N, K] into `format`: data receives
// weight_matrix_bytes(format, N, K) minus the scales' bytes, that is N·K
// floats, bf16 values or int8 values; scales receives N·int8_blocks_per_row(K)
// floats for int8 (unused otherwise). Fails, naming `name`, on a weight that
// is not finite (int8 could not represent it; bf16 and fp32 would carry it
// into every logit).
Status pack_weight_matrix(ThreadPool& pool, WeightFormat format, const float* src, size_t N, size_t K,
                          void* data, float* scales, const char* name);

// Rows [n0, n0 + rows) of W as fp32 into out [rows, K]: what the kernels
// multiply by (tests compare with it; the prefill path feeds it to sgemm).
void unpack_weight_rows(const WeightMatrix& W, size_t n0, size_t rows, size_t K, float* out);

}  // namespace sc
