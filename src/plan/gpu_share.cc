#include "plan/gpu_share.h"

#include <algorithm>

namespace sc::plan {

MicroBatchDims micro_batch_dims(const PlanModel& model, const Layout& layout, const RunSpec& run) {
  const ModelConfig& c = model.config;
  MicroBatchDims d;
  d.tp = static_cast<double>(layout.tp);
  d.vp = static_cast<double>(layout.vp);
  d.cp = static_cast<double>(layout.cp);
  d.ep = static_cast<double>(layout.ep);
  d.layers = static_cast<double>(c.num_hidden_layers);
  d.hidden = static_cast<double>(c.hidden_size);
  d.query_width = static_cast<double>(c.num_attention_heads * c.head_dim);
  d.kv_width = static_cast<double>(c.num_key_value_heads * c.head_dim);
  d.mlp_width = static_cast<double>(model.mlp_width);
  d.vocab = static_cast<double>(c.vocab_size);
  d.seq_len = static_cast<double>(run.seq_len);
  d.micro_batch = static_cast<double>(layout.micro_batch);
  d.experts_per_token = c.is_moe() ? static_cast<double>(c.num_experts_per_tok) : 1;
  d.experts = c.is_moe() ? static_cast<double>(c.num_experts) : 1;
  d.tokens = d.micro_batch * d.seq_len / d.cp;
  d.sp_split = layout.software.sequence_parallel ? d.tp : 1;
  return d;
}

CommGroups comm_groups(const ClusterSpec& cluster, const Layout& layout) {
  CommGroups g;
  g.tp = strided_group(cluster, layout.tp, 1);
  g.cp = strided_group(cluster, layout.cp, layout.tp);
  g.ep = strided_group(cluster, layout.ep, layout.tp * layout.cp);
  const int64_t dense_dp = layout.dp * layout.cp;
  g.dense_dp = strided_group(cluster, dense_dp, layout.tp);
  g.expert_dp = strided_group(cluster, dense_dp / layout.ep, layout.tp * layout.ep);
  g.pp_inside_node = layout.tp * layout.cp * layout.dp < cluster.gpus_per_node && layout.pp > 1;
  return g;
}

ParameterShare parameter_share(const ParameterCounts& counts, const MicroBatchDims& d, const PipelineShape& shape) {
  ParameterShare p;
  for (const auto& layer : counts.layers) {
    if (layer.is_moe) {
      p.dense_per_layer += static_cast<double>(layer.attention + layer.norms + layer.router);
      p.expert_per_layer += static_cast<double>(layer.ffn);
    } else {
      p.dense_per_layer += static_cast<double>(layer.total());
    }
  }
  p.dense_per_layer /= d.layers * d.tp;
  p.expert_per_layer /= d.layers * d.tp * d.ep;
  p.per_layer = p.dense_per_layer + p.expert_per_layer;
  p.vocab = d.vocab * d.hidden / d.tp;
  p.tied = counts.output == 0;

  // The first rank holds the embedding, the last the output matrix (both
  // when pp == 1, unless tied).
  const double first = static_cast<double>(shape.first_layers) * p.per_layer + p.vocab;
  const double last = static_cast<double>(shape.last_layers) * p.per_layer + (shape.pp > 1 || !p.tied ? p.vocab : 0);
  const double middle = static_cast<double>(shape.middle_layers) * p.per_layer;
  const double most = std::max({first, last, middle});
  p.max_rank_expert =
      static_cast<double>(std::max({shape.first_layers, shape.last_layers, shape.middle_layers})) * p.expert_per_layer;
  p.max_rank_dense = most - p.max_rank_expert;
  return p;
}

int64_t micro_batches_per_step(const Layout& layout, const RunSpec& run) {
  return run.global_batch_tokens / run.seq_len / (layout.dp * layout.micro_batch);
}

}  // namespace sc::plan
