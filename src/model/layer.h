// The forward of docs/model.md in three pieces (embedding, one layer, head):
// the one definition of the layer sequence that training (Model::forward) and
// inference (Inference::prefill and decode) both run. They differ only in
// where a layer's rows sit: training's rows are whole sequences attending to
// each other; inference's rows are tokens at explicit positions attending to
// a KV cache. The backward stays in Model::backward, beside the activations
// it reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "model/config.h"
#include "kernels/weight_format.h"
#include "model/moe.h"

namespace sc {

struct ModelWeights;
struct LayerWeights;

// The matrices a layer multiplies by, in the format they are stored in:
// training's are fp32 views of its parameters (fp32_matrices in
// model/model.h); inference may pack them to bf16 or int8
// (model/packed_weights.h). Norm weights, the router and the embedding table
// are always read from the fp32 parameters in LayerWeights / ModelWeights.
struct LayerMatrices {
  WeightMatrix wq, wk, wv, wo;
  WeightMatrix w_gate, w_up, w_down;  // dense layers
  ExpertMatrices experts;             // MoE layers
};

struct ModelMatrices {
  std::vector<LayerMatrices> layers;
  WeightMatrix output;  // the output projection [V, H] (a copy of the embedding's values when tied)
};

// One layer's activations over N rows: training keeps one set per layer for
// the backward, inference reuses one set for every layer. o, o_rstd, y_rstd
// exist with sandwich norms; y with sandwich norms or MoE; gate, up, act on
// dense layers; moe on MoE layers; lse in training.
struct LayerActivations {
  float *x_in, *attn_normed, *attn_rstd, *q, *k, *v, *attn_out, *lse, *o, *o_rstd, *h_mid;
  float *ffn_normed, *ffn_rstd, *gate, *up, *act, *y, *y_rstd;
  MoeActivations moe;
};

// Buffer requests for an arena, floats and int32s.
struct ActivationPlan {
  std::vector<std::pair<float**, size_t>> floats;
  std::vector<std::pair<int32_t**, size_t>> ints;
};

// Appends the buffers of `a` over N rows to `plan`. dense_ffn / moe_ffn: which
// feed-forward buffers (inference's one set serves layers of both kinds);
// keep_lse: the softmax statistics the attention backward needs.
void plan_layer_activations(const ModelConfig& c, size_t N, bool dense_ffn, bool moe_ffn, bool keep_lse,
                            LayerActivations* a, ActivationPlan* plan);

// How a layer's attention finds positions and keys for its N rows.
//  - Training (k_cache null): the rows are shape.B sequences of shape.T
//    tokens, row n at position n mod T, attending to the rows before it in
//    its sequence; lse is kept for the backward.
//  - Inference: row n is at positions[n]; the rows come in segments of one
//    sequence each (kernels/attention.h). Their keys and values are first
//    stored in this layer's cache [shape.B slots, shape.T context, Hkv·D],
//    then each segment attends to its slot's cached keys.
// rope_cos, rope_sin: tables [shape.T, D/2] from position 0. scratch:
// attention_scratch_floats(shape.T, threads).
struct LayerAttention {
  AttentionShape shape;
  const float* rope_cos = nullptr;
  const float* rope_sin = nullptr;
  float* scratch = nullptr;
  const size_t* positions = nullptr;
  const AttentionSegment* segments = nullptr;
  size_t num_segments = 0;
  float* k_cache = nullptr;
  float* v_cache = nullptr;
};

// h = E[tokens] · embedding_multiplier_scale: x [N, H]. Fails (writing
// nothing) when a token is >= V.
Status embed_forward(ThreadPool& pool, const ModelConfig& c, const ModelWeights& w, float* x,
                     const uint32_t* tokens, size_t N);

// One layer over N rows: from a.x_in, writes x_out [N, H] and every
// activation of `a` (x_out may be a.x_in: x_in is not read once h_mid is
// formed). Norms and router from w, the matrices from m. moe_shape.N must be
// N; moe_stats receives the router figures of a MoE layer.
void layer_forward(ThreadPool& pool, const ModelConfig& c, const LayerWeights& w, const LayerMatrices& m,
                   const LayerActivations& a, float* x_out, size_t N, const LayerAttention& attention,
                   const MoeShape& moe_shape, GatedActivation act, MoeStats* moe_stats);

// Final norm and output projection of N rows x [N, H]: raw logits [N, V],
// before the output multiplier (training applies it inside the loss,
// inference with scale_inplace). normed [N, H], rstd [N].
void head_forward(ThreadPool& pool, const ModelConfig& c, const ModelWeights& w, const WeightMatrix& output,
                  float* logits, float* normed, float* rstd, const float* x, size_t N);

}  // namespace sc
