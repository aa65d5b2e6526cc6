#include "model/counts.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace sc {
namespace {

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Appends tensors one after another, each at the next aligned offset.
class LayoutBuilder {
 public:
  void add(std::string name, std::vector<int64_t> shape, TensorRole role, int64_t layer = -1,
           int64_t expert = -1) {
    TensorSpec spec;
    spec.name = std::move(name);
    spec.shape = std::move(shape);
    spec.offset = round_up(end_, kParameterAlignmentFloats);
    spec.is_norm = role == TensorRole::kNorm;
    spec.role = role;
    spec.layer = layer;
    spec.expert = expert;
    end_ = spec.offset + spec.numel();
    tensors_.push_back(std::move(spec));
  }
  std::vector<TensorSpec> take() { return std::move(tensors_); }

 private:
  int64_t end_ = 0;
  std::vector<TensorSpec> tensors_;
};

void add_attention(const ModelConfig& c, int64_t l, LayoutBuilder* b) {
  const int64_t h = c.hidden_size;
  const int64_t q_width = c.num_attention_heads * c.head_dim;
  const int64_t kv_width = c.num_key_value_heads * c.head_dim;
  const std::string prefix = fmt::format("model.layers.{}.self_attn.", l);
  b->add(prefix + "q_proj.weight", {q_width, h}, TensorRole::kAttention, l);
  b->add(prefix + "k_proj.weight", {kv_width, h}, TensorRole::kAttention, l);
  b->add(prefix + "v_proj.weight", {kv_width, h}, TensorRole::kAttention, l);
  b->add(prefix + "o_proj.weight", {h, q_width}, TensorRole::kAttention, l);
}

// The norms after attention, in docs/model.md's order. Without sandwich norms
// Llama's post_attention_layernorm is the FFN input norm; with them, Gemma-2's
// names: post_attention (attention output), pre_feedforward (FFN input),
// post_feedforward (FFN output).
void add_middle_norms(const ModelConfig& c, int64_t l, LayoutBuilder* b) {
  const std::string prefix = fmt::format("model.layers.{}.", l);
  b->add(prefix + "post_attention_layernorm.weight", {c.hidden_size}, TensorRole::kNorm, l);
  if (c.sandwich_norm) {
    b->add(prefix + "pre_feedforward_layernorm.weight", {c.hidden_size}, TensorRole::kNorm, l);
    b->add(prefix + "post_feedforward_layernorm.weight", {c.hidden_size}, TensorRole::kNorm, l);
  }
}

void add_dense_ffn(const ModelConfig& c, int64_t l, LayoutBuilder* b) {
  const int64_t h = c.hidden_size;
  const int64_t f = c.intermediate_size;
  const std::string prefix = fmt::format("model.layers.{}.mlp.", l);
  b->add(prefix + "gate_proj.weight", {f, h}, TensorRole::kFfn, l);
  b->add(prefix + "up_proj.weight", {f, h}, TensorRole::kFfn, l);
  b->add(prefix + "down_proj.weight", {h, f}, TensorRole::kFfn, l);
}

// Mixtral's names: w1 = gate, w3 = up, w2 = down.
void add_moe_ffn(const ModelConfig& c, int64_t l, LayoutBuilder* b) {
  const int64_t h = c.hidden_size;
  const int64_t f = c.intermediate_size;
  const std::string prefix = fmt::format("model.layers.{}.block_sparse_moe.", l);
  b->add(prefix + "gate.weight", {c.num_experts, h}, TensorRole::kRouter, l);
  for (int64_t e = 0; e < c.num_experts; ++e) {
    const std::string expert = fmt::format("{}experts.{}.", prefix, e);
    b->add(expert + "w1.weight", {f, h}, TensorRole::kExpert, l, e);
    b->add(expert + "w3.weight", {f, h}, TensorRole::kExpert, l, e);
    b->add(expert + "w2.weight", {h, f}, TensorRole::kExpert, l, e);
  }
}

// The activations one layer keeps per token for its backward pass, in
// floats. A layer saves the input of every norm and matmul and what the
// nonlinearities need:
//   h_in                      H        layer input (residual stream), input of input_layernorm
//   rstd of each norm         1 each   1/rms per row
//   a                         H        normed input of q/k/v_proj
//   q, k, v after RoPE        (Hq + 2 Hkv) D
//   attention output          Hq D     softmax(s) v, input of o_proj
//   logsumexp per row         Hq       so the backward recomputes softmax(s) from q, k
//   o_proj output (sandwich)  H        input of post_attention_layernorm
//   h_mid                     H        residual after attention, input of the FFN norm
//   f                         H        normed input of the FFN
//   dense: gate, up           2F       pre-activations
//          act(gate) * up     F        input of down_proj
//   MoE:   router logits      E
//          top-k weights, ids 2k
//          expert inputs      k H      f gathered for each chosen expert
//          gate, up, product  3 k F    as dense, for each chosen expert
//          expert outputs     k H      the gradient of a routing weight is dy . y_e
//   FFN output (sandwich)     H        input of post_feedforward_layernorm
// The T x T attention scores are not kept (flash-style recomputation), nor
// is backward scratch, which lives one layer at a time.
int64_t layer_activation_floats(const ModelConfig& c, int64_t layer) {
  const int64_t h = c.hidden_size;
  const int64_t f = c.intermediate_size;
  const int64_t norm_count = c.sandwich_norm ? 4 : 2;
  int64_t floats = h + norm_count + h;
  floats += (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim;
  floats += c.num_attention_heads * c.head_dim + c.num_attention_heads;
  if (c.sandwich_norm) floats += h;
  floats += h + h;
  if (c.is_moe_layer(layer)) {
    const int64_t k = c.num_experts_per_tok;
    floats += c.num_experts + 2 * k + k * h + 3 * k * f + k * h;
  } else {
    floats += 3 * f;
  }
  if (c.sandwich_norm) floats += h;
  return floats;
}

// "model.layers.3.block_sparse_moe.experts.5.w1.weight" ->
// "model.layers.{l}.block_sparse_moe.experts.{e}.w1.weight".
std::string name_pattern(std::string_view name) {
  std::string out;
  std::string_view previous;
  while (!name.empty()) {
    size_t dot = name.find('.');
    std::string_view part = name.substr(0, dot);
    bool is_index =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!out.empty()) out += '.';
    if (is_index && previous == "layers") {
      out += "{l}";
    } else if (is_index && previous == "experts") {
      out += "{e}";
    } else {
      out += part;
    }
    previous = part;
    name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
  }
  return out;
}

// 315684820992 -> "315.68B".
std::string human_count(double value) {
  if (value >= 1e12) return fmt::format("{:.2f}T", value / 1e12);
  if (value >= 1e9) return fmt::format("{:.2f}B", value / 1e9);
  if (value >= 1e6) return fmt::format("{:.2f}M", value / 1e6);
  if (value >= 1e3) return fmt::format("{:.2f}K", value / 1e3);
  return fmt::format("{:.0f}", value);
}

std::string human_bytes(double bytes) {
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  if (bytes >= 1024 * kGiB) return fmt::format("{:.2f} TiB", bytes / (1024 * kGiB));
  if (bytes >= kGiB) return fmt::format("{:.2f} GiB", bytes / kGiB);
  return fmt::format("{:.2f} MiB", bytes / (1024.0 * 1024.0));
}

}  // namespace

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<TensorSpec> parameter_layout(const ModelConfig& c) {
  LayoutBuilder b;
  b.add("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, TensorRole::kEmbedding);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    b.add(fmt::format("model.layers.{}.input_layernorm.weight", l), {c.hidden_size}, TensorRole::kNorm, l);
    add_attention(c, l, &b);
    add_middle_norms(c, l, &b);
    if (c.is_moe_layer(l)) {
      add_moe_ffn(c, l, &b);
    } else {
      add_dense_ffn(c, l, &b);
    }
  }
  b.add("model.norm.weight", {c.hidden_size}, TensorRole::kNorm);
  if (!c.tie_word_embeddings) b.add("lm_head.weight", {c.vocab_size, c.hidden_size}, TensorRole::kOutput);
  return b.take();
}

int64_t parameter_buffer_floats(const std::vector<TensorSpec>& layout) {
  if (layout.empty()) return 0;
  const TensorSpec& last = layout.back();
  return round_up(last.offset + last.numel(), kParameterAlignmentFloats);
}

ParameterCounts count_parameters(const ModelConfig& c) {
  const std::vector<TensorSpec> layout = parameter_layout(c);
  ParameterCounts counts;
  counts.layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) counts.layers[l].is_moe = c.is_moe_layer(l);

  for (const TensorSpec& t : layout) {
    const int64_t n = t.numel();
    counts.total += n;
    LayerParameterCounts* layer = t.layer >= 0 ? &counts.layers[t.layer] : nullptr;
    switch (t.role) {
      case TensorRole::kEmbedding: counts.embedding += n; break;
      case TensorRole::kOutput: counts.output += n; break;
      case TensorRole::kNorm:
        counts.norms += n;
        if (layer) layer->norms += n; else counts.final_norm += n;
        break;
      case TensorRole::kAttention:
        counts.attention += n;
        layer->attention += n;
        break;
      case TensorRole::kRouter:
        counts.router += n;
        layer->router += n;
        break;
      case TensorRole::kFfn:
        counts.ffn += n;
        layer->ffn += n;
        layer->active_ffn += n;
        break;
      case TensorRole::kExpert:
        counts.ffn += n;
        layer->ffn += n;
        // Experts share one shape, so the first k stand for whichever k a
        // token is routed to.
        if (t.expert < c.num_experts_per_tok) layer->active_ffn += n;
        break;
    }
  }

  counts.active = counts.embedding + counts.output + counts.final_norm;
  // The output projection is V x H whether it is lm_head or E itself.
  counts.active_matmul = c.tie_word_embeddings ? counts.embedding : counts.output;
  for (const LayerParameterCounts& layer : counts.layers) {
    counts.active += layer.active();
    counts.active_matmul += layer.attention + layer.router + layer.active_ffn;
  }
  counts.buffer_floats = parameter_buffer_floats(layout);
  return counts;
}

FlopsPerToken flops_per_token(const ModelConfig& c, int64_t seq_len) {
  FlopsPerToken flops;
  flops.forward_matmul = 2 * count_parameters(c).active_matmul;
  flops.forward_attention = 4 * c.num_hidden_layers * seq_len * c.num_attention_heads * c.head_dim;
  flops.forward = flops.forward_matmul + flops.forward_attention;
  flops.training = 3 * flops.forward;
  return flops;
}

int64_t model_flops_per_token(const ModelConfig& config, int64_t seq_len) {
  return flops_per_token(config, seq_len).training;
}

int64_t activation_floats_per_token(const ModelConfig& c) {
  int64_t floats = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) floats += layer_activation_floats(c, l);
  // Final norm: its input, rstd, and its output (input of the output projection).
  floats += c.hidden_size + 1 + c.hidden_size;
  return floats;
}

MemoryEstimate estimate_training_memory(const ModelConfig& c, int64_t batch, int64_t seq_len) {
  constexpr int64_t kFloatBytes = 4;
  const int64_t buffer_floats = parameter_buffer_floats(parameter_layout(c));
  const int64_t tokens = batch * seq_len;
  MemoryEstimate m;
  m.weights_bytes = kFloatBytes * buffer_floats;
  m.grads_bytes = kFloatBytes * buffer_floats;
  m.optimizer_bytes = 2 * kFloatBytes * buffer_floats;
  // The loss overwrites the logits with their gradient, so they count once.
  m.logits_bytes = kFloatBytes * tokens * c.vocab_size;
  m.activations_bytes = kFloatBytes * tokens * activation_floats_per_token(c) + m.logits_bytes;
  m.total_bytes = m.weights_bytes + m.grads_bytes + m.optimizer_bytes + m.activations_bytes;
  return m;
}

Status check_training_shape(const ModelConfig& c, int64_t batch, int64_t seq_len) {
  if (batch < 1 || seq_len < 1) {
    return Status::invalid("batch size {} and sequence length {} must be positive", batch, seq_len);
  }
  if (seq_len > c.max_position_embeddings) {
    return Status::invalid("sequence length {} exceeds the model's max_position_embeddings {}", seq_len,
                           c.max_position_embeddings);
  }
  if (batch > kMaxTokensPerMicroBatch / seq_len) {
    return Status::invalid("a micro-batch of {} x {} tokens is more than the {} supported", batch, seq_len,
                           kMaxTokensPerMicroBatch);
  }
  // activation_floats_per_token() is safe in integers under the config's
  // bounds; its product with the tokens may not be.
  constexpr double kMaxBytes = 0x1p62;
  const double tokens = static_cast<double>(batch * seq_len);
  const double activation_bytes =
      4.0 * tokens * (static_cast<double>(activation_floats_per_token(c)) + static_cast<double>(c.vocab_size));
  if (activation_bytes > kMaxBytes) {
    return Status::invalid("a micro-batch of {} x {} tokens needs about {:.3g} bytes of activations, more than "
                           "64-bit sizes can hold", batch, seq_len, activation_bytes);
  }
  return Status();
}

std::vector<TensorGroup> group_tensors(const std::vector<TensorSpec>& layout) {
  std::vector<TensorGroup> groups;
  for (const TensorSpec& t : layout) {
    std::string pattern = name_pattern(t.name);
    auto same = [&](const TensorGroup& g) { return g.name_pattern == pattern && g.shape == t.shape; };
    auto it = std::find_if(groups.begin(), groups.end(), same);
    if (it == groups.end()) {
      groups.push_back(TensorGroup{std::move(pattern), t.shape, 0, 0});
      it = groups.end() - 1;
    }
    it->count += 1;
    it->parameters += t.numel();
  }
  return groups;
}

nlohmann::json counts_report(const ModelConfig& c, int64_t batch, int64_t seq_len) {
  const ParameterCounts p = count_parameters(c);
  const FlopsPerToken f = flops_per_token(c, seq_len);
  const MemoryEstimate m = estimate_training_memory(c, batch, seq_len);
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorGroup& g : group_tensors(parameter_layout(c))) {
    tensors.push_back({{"name", g.name_pattern}, {"shape", g.shape}, {"count", g.count}, {"parameters", g.parameters}});
  }
  return {
      {"parameters",
       {{"total", p.total},
        {"active", p.active},
        {"embedding", p.embedding},
        {"output", p.output},
        {"final_norm", p.final_norm},
        {"attention", p.attention},
        {"norms", p.norms},
        {"ffn", p.ffn},
        {"router", p.router},
        {"active_matmul", p.active_matmul},
        {"buffer_floats", p.buffer_floats}}},
      {"flops_per_token",
       {{"seq_len", seq_len},
        {"forward_matmul", f.forward_matmul},
        {"forward_attention", f.forward_attention},
        {"forward", f.forward},
        {"training", f.training}}},
      {"memory",
       {{"batch", batch},
        {"seq_len", seq_len},
        {"weights_bytes", m.weights_bytes},
        {"grads_bytes", m.grads_bytes},
        {"optimizer_bytes", m.optimizer_bytes},
        {"activations_bytes", m.activations_bytes},
        {"logits_bytes", m.logits_bytes},
        {"total_bytes", m.total_bytes}}},
      {"tensors", tensors},
  };
}

std::string format_counts_report(const ModelConfig& c, int64_t batch, int64_t seq_len) {
  const ParameterCounts p = count_parameters(c);
  const FlopsPerToken f = flops_per_token(c, seq_len);
  const MemoryEstimate m = estimate_training_memory(c, batch, seq_len);
  const std::vector<TensorGroup> groups = group_tensors(parameter_layout(c));

  std::string out;
  auto line = [&out](std::string text) { out += text + '\n'; };
  line(fmt::format("parameters  {} total ({}), {} active per token", human_count(static_cast<double>(p.total)),
                   p.total, human_count(static_cast<double>(p.active))));
  line(fmt::format("  embedding {}  output {}  attention {}  ffn {}  router {}  norms {}",
                   human_count(static_cast<double>(p.embedding)), human_count(static_cast<double>(p.output)),
                   human_count(static_cast<double>(p.attention)), human_count(static_cast<double>(p.ffn)),
                   human_count(static_cast<double>(p.router)), human_count(static_cast<double>(p.norms))));
  line(fmt::format("flops/token {} training, {} forward ({} matmul + {} attention at T={})",
                   human_count(static_cast<double>(f.training)), human_count(static_cast<double>(f.forward)),
                   human_count(static_cast<double>(f.forward_matmul)),
                   human_count(static_cast<double>(f.forward_attention)), seq_len));
  line(fmt::format("memory      {} for batch {} x {} (weights {}, grads {}, AdamW {}, activations {} incl. logits {})",
                   human_bytes(static_cast<double>(m.total_bytes)), batch, seq_len,
                   human_bytes(static_cast<double>(m.weights_bytes)), human_bytes(static_cast<double>(m.grads_bytes)),
                   human_bytes(static_cast<double>(m.optimizer_bytes)),
                   human_bytes(static_cast<double>(m.activations_bytes)),
                   human_bytes(static_cast<double>(m.logits_bytes))));

  size_t name_width = 6;
  for (const TensorGroup& g : groups) name_width = std::max(name_width, g.name_pattern.size());
  line(fmt::format("{:<{}}  {:>14}  {:>6}  {:>14}", "tensor", name_width, "shape", "count", "parameters"));
  for (const TensorGroup& g : groups) {
    line(fmt::format("{:<{}}  {:>14}  {:>6}  {:>14}", g.name_pattern, name_width,
                     fmt::format("[{}]", fmt::join(g.shape, ", ")), g.count, g.parameters));
  }
  return out;
}

}  // namespace sc
