// A model's matrices packed for inference in one WeightFormat (bf16, or int8
// with a scale per block of 32 weights): what `generate --weights` and
// `serve --weights` decode with. Decode reads every matrix once per token, so
// bf16 halves and int8 about quarters the bytes it streams. fp32 packs
// nothing: its matrices are views of the parameters.
//
// Only the matrices are packed. The embedding table (a lookup of one row per
// token), norm weights and the MoE router stay fp32; a tied output
// projection is packed as a copy of the embedding's values.
#pragma once

#include <cstddef>

#include "core/arena.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/weight_format.h"
#include "model/config.h"
#include "model/layer.h"
#include "model/model.h"

namespace sc {

class PackedWeights {
 public:
  // Packs w's matrices (w must outlive this object when format is fp32).
  // Fails naming the tensor on a weight packing cannot carry (NaN, inf).
  static Result<PackedWeights> create(const ModelConfig& config, const ModelWeights& w, WeightFormat format,
                                      ThreadPool& pool);
  PackedWeights() = default;

  WeightFormat format() const { return format_; }
  const ModelMatrices& matrices() const { return matrices_; }
  // Bytes of every matrix in this format, scales included (with MoE, all
  // experts'; a token reads only its experts').
  size_t matrix_bytes() const { return matrix_bytes_; }

 private:
  WeightFormat format_ = WeightFormat::kF32;
  Arena storage_;
  ModelMatrices matrices_;
  size_t matrix_bytes_ = 0;
};

}  // namespace sc
