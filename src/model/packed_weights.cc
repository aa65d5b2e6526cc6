#include "model/packed_weights.h"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "kernels/linear.h"

namespace sc {
namespace {

// One matrix to pack: its fp32 source, shape, name (for errors) and where
// its packed view goes.
struct MatrixToPack {
  const float* source;
  size_t N, K;
  std::string name;
  WeightMatrix* packed;
};

std::vector<MatrixToPack> matrices_to_pack(const ModelConfig& c, const ModelWeights& w, ModelMatrices* m) {
  const size_t H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const size_t QD = c.num_attention_heads * c.head_dim, KD = c.num_key_value_heads * c.head_dim;
  std::vector<MatrixToPack> list;
  m->layers.resize(w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    LayerMatrices& lm = m->layers[l];
    const std::string p = fmt::format("model.layers.{}.", l);
    list.push_back({lw.wq, QD, H, p + "self_attn.q_proj.weight", &lm.wq});
    list.push_back({lw.wk, KD, H, p + "self_attn.k_proj.weight", &lm.wk});
    list.push_back({lw.wv, KD, H, p + "self_attn.v_proj.weight", &lm.wv});
    list.push_back({lw.wo, H, QD, p + "self_attn.o_proj.weight", &lm.wo});
    if (lw.is_moe) {
      const size_t E = lw.moe.w1.size();
      lm.experts.w1.resize(E);
      lm.experts.w3.resize(E);
      lm.experts.w2.resize(E);
      for (size_t e = 0; e < E; ++e) {
        const std::string x = fmt::format("{}block_sparse_moe.experts.{}.", p, e);
        list.push_back({lw.moe.w1[e], F, H, x + "w1.weight", &lm.experts.w1[e]});
        list.push_back({lw.moe.w3[e], F, H, x + "w3.weight", &lm.experts.w3[e]});
        list.push_back({lw.moe.w2[e], H, F, x + "w2.weight", &lm.experts.w2[e]});
      }
    } else {
      list.push_back({lw.w_gate, F, H, p + "mlp.gate_proj.weight", &lm.w_gate});
      list.push_back({lw.w_up, F, H, p + "mlp.up_proj.weight", &lm.w_up});
      list.push_back({lw.w_down, H, F, p + "mlp.down_proj.weight", &lm.w_down});
    }
  }
  list.push_back({w.output, V, H, c.tie_word_embeddings ? "model.embed_tokens.weight (as the output projection)"
                                                          : "lm_head.weight",
                  &m->output});
  return list;
}

}  // namespace

Result<PackedWeights> PackedWeights::create(const ModelConfig& config, const ModelWeights& w, WeightFormat format,
                                            ThreadPool& pool) {
  PackedWeights packed;
  packed.format_ = format;
  const std::vector<MatrixToPack> list = matrices_to_pack(config, w, &packed.matrices_);
  for (const MatrixToPack& t : list) packed.matrix_bytes_ += weight_matrix_bytes(format, t.N, t.K);
  if (format == WeightFormat::kF32) {
    for (const MatrixToPack& t : list) *t.packed = WeightMatrix::f32(t.source);
    return packed;
  }
  // Each matrix's values, then its scales, each 64-byte aligned.
  size_t capacity = 0;
  for (const MatrixToPack& t : list) capacity += weight_matrix_bytes(format, t.N, t.K) + 2 * Arena::kDefaultAlignment;
  SC_ASSIGN_OR_RETURN(packed.storage_,
                      Arena::create(capacity, fmt::format("{} weights ({} matrices)", weight_format_name(format), list.size())));
  for (const MatrixToPack& t : list) {
    const size_t scale_count = format == WeightFormat::kInt8 ? t.N * int8_blocks_per_row(t.K) : 0;
    SC_ASSIGN_OR_RETURN(void* data, packed.storage_.allocate_bytes(weight_matrix_bytes(format, t.N, t.K) -
                                                                    scale_count * sizeof(float)));
    float* scales = nullptr;
    if (scale_count > 0) {
      SC_ASSIGN_OR_RETURN(scales, packed.storage_.allocate<float>(scale_count));
    }
    SC_RETURN_IF_ERROR(pack_weight_matrix(pool, format, t.source, t.N, t.K, data, scales, t.name.c_str()));
    *t.packed = {format, data, scales};
  }
  return packed;
}

}  // namespace sc
