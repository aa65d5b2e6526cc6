// The transformer of docs/model.md on the CPU kernels: parameters, gradients
// and activations each in one block allocated at creation, forward and
// backward side by side, nothing allocated per step.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/arena.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "model/config.h"
#include "model/counts.h"
#include "model/layer.h"
#include "model/moe.h"

namespace sc {

// Named views into the parameter buffer (or, bound to the gradient buffer,
// into the gradients: same layout).
struct LayerWeights {
  float* attn_norm = nullptr;
  float* wq = nullptr;
  float* wk = nullptr;
  float* wv = nullptr;
  float* wo = nullptr;
  float* attn_out_norm = nullptr;  // sandwich only
  float* ffn_norm = nullptr;
  float* w_gate = nullptr;
  float* w_up = nullptr;
  float* w_down = nullptr;
  float* ffn_out_norm = nullptr;  // sandwich only
  bool is_moe = false;            // then `moe` replaces w_gate, w_up, w_down
  MoeWeights moe;
};

struct ModelWeights {
  float* embedding = nullptr;
  std::vector<LayerWeights> layers;
  float* final_norm = nullptr;
  float* output = nullptr;  // == embedding when tied
};

Result<ModelWeights> bind_weights(const ModelConfig& config, const std::vector<TensorSpec>& layout, float* base);

// The matrices of w as fp32 views (what training multiplies by).
ModelMatrices fp32_matrices(const ModelWeights& w);

class Model {
 public:
  // Allocates parameters, gradients and activations for micro-batches of
  // `batch` sequences of `seq_len` tokens. The parameter and gradient buffers
  // are padded with zeros to a multiple of `buffer_multiple` floats, so a
  // data-parallel reducer can cut them into equal shards in place.
  static Result<std::unique_ptr<Model>> create(const ModelConfig& config, int64_t batch, int64_t seq_len,
                                               ThreadPool& pool, size_t buffer_multiple = 1);

  const ModelConfig& config() const { return config_; }
  const std::vector<TensorSpec>& layout() const { return layout_; }
  int64_t batch() const { return B_; }
  int64_t seq_len() const { return T_; }
  float* params() { return params_; }
  float* grads() { return grads_; }
  size_t num_floats() const { return num_floats_; }        // the layout's extent
  size_t buffer_floats() const { return buffer_floats_; }  // num_floats() plus zero padding
  size_t activation_bytes() const { return activations_.used_bytes(); }

  // docs/model.md's initialization from a seed (same bits on every machine).
  void init_weights(uint64_t seed);
  void zero_grads();

  // tokens, targets [batch·seq_len]. Keeps what backward needs. Returns the
  // summed loss and the number of counted targets. Forward walks the
  // parameter buffer from its start; before each layer it calls
  // params_needed(end): params()[0, end) must be in place when it returns
  // (the data-parallel parameter all-gather of the last update finishes
  // bucket by bucket while the first layers already run). An error from the
  // hook ends the forward with it.
  using ParamsNeededHook = std::function<Status(size_t end)>;
  Result<CrossEntropySums> forward(const uint32_t* tokens, const uint32_t* targets,
                                   const ParamsNeededHook& params_needed = {});
  // Accumulates into grads() the gradient of dloss · (summed loss of the
  // last forward). Overwrites the logits. Backward walks the buffer from its
  // end to its start; after each layer it calls grads_final(offset): from
  // then on grads()[offset, buffer_floats()) receive no more writes (the
  // data-parallel reducer starts communicating them while the rest runs).
  using GradsFinalHook = std::function<void(size_t offset)>;
  void backward(float dloss, const GradsFinalHook& grads_final = {});
  // Evaluation with other matrices than the parameters' own (packed bf16 or
  // int8, to measure what packing costs in loss): the following forwards
  // multiply by `matrices` (not owned; null: the parameters again). Norms,
  // router and embedding still come from params(). Not for training: the
  // backward would not match.
  void set_forward_matrices(const ModelMatrices* matrices) { forward_matrices_ = matrices; }
  // Raw logits [batch·seq_len, V] of the last forward (before the output multiplier).
  const float* logits() const { return logits_; }

  // Mixture-of-Experts figures of the last forward: router statistics per MoE
  // layer, and the auxiliary losses averaged over MoE layers (0 when dense).
  const std::vector<MoeStats>& moe_stats() const { return moe_stats_; }
  double aux_loss() const;
  double z_loss() const;
  // The auxiliary terms as they enter the loss: aux_coef · aux + z_coef · z.
  double auxiliary_loss_term() const;

 private:
  Model(const ModelConfig& config, int64_t B, int64_t T, ThreadPool& pool) : config_(config), B_(B), T_(T), pool_(pool) {}
  Status allocate(size_t buffer_multiple);

  ModelConfig config_;
  int64_t B_, T_;
  ThreadPool& pool_;
  std::vector<TensorSpec> layout_;
  size_t num_floats_ = 0;
  size_t buffer_floats_ = 0;
  std::vector<size_t> layer_start_;  // first float of each layer's parameters
  std::vector<size_t> layer_end_;    // one past its last
  size_t embedding_end_ = 0;
  bool layers_in_buffer_order_ = false;
  Arena weights_arena_;
  Arena activations_;
  float* params_ = nullptr;
  float* grads_ = nullptr;
  ModelWeights w_, g_;
  ModelMatrices matrices_;  // fp32 views of w_
  const ModelMatrices* forward_matrices_ = nullptr;  // null: matrices_
  GatedActivation act_ = GatedActivation::kGeluTanh;
  AttentionShape attn_shape_;

  // Activations.
  const uint32_t* tokens_ = nullptr;
  const uint32_t* targets_ = nullptr;
  std::vector<LayerActivations> acts_;
  float *x_final_, *final_normed_, *final_rstd_, *logits_, *row_loss_, *row_lse_;
  float *rope_cos_, *rope_sin_, *attn_scratch_, *norm_scratch_;
  // Backward scratch, reused by every layer.
  float *d_residual_, *d_normed_, *d_branch_, *d_q_, *d_k_, *d_v_, *d_attn_out_, *d_gate_, *d_up_, *d_act_;
  MoeShape moe_shape_;
  MoeBackwardScratch moe_scratch_{};
  std::vector<MoeStats> moe_stats_;  // one per MoE layer
  size_t num_moe_layers_ = 0;
  size_t last_count_ = 0;  // counted targets of the last forward
};

}  // namespace sc
