#include "serve/sampling.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "model/config.h"

namespace sc {

constexpr double kMinTemperature = 1e-3, kMaxTemperature = 100;

uint32_t Sampler::sample(const float* logits, const SamplingOptions& options, uint64_t draw) {
  const size_t V = vocab_;
  if (options.temperature <= 0) return static_cast<uint32_t>(std::max_element(logits, logits + V) - logits);
  candidates_.resize(V);
  for (size_t i = 0; i < V; ++i)
    candidates_[i] = {logits[i] / static_cast<float>(options.temperature), static_cast<uint32_t>(i)};
  size_t keep = V;
  if (options.top_k > 0) keep = std::min<size_t>(keep, static_cast<size_t>(options.top_k));
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<long>(keep), candidates_.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  const float max_logit = candidates_[0].first;
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += (candidates_[i].first = std::exp(candidates_[i].first - max_logit));
  if (options.top_p < 1.0) {
    double cumulative = 0;
    for (size_t i = 0; i < keep; ++i) {
      cumulative += candidates_[i].first / total;
      if (cumulative >= options.top_p) {
        keep = i + 1;
        break;
      }
    }
    total = 0;
    for (size_t i = 0; i < keep; ++i) total += candidates_[i].first;
  }
  double u = CounterRng(options.seed, 0x5A4D).uniform(draw) * total;
  for (size_t i = 0; i < keep; ++i) {
    u -= candidates_[i].first;
    if (u <= 0) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

Status SamplingOptions::validate() const {
  if (max_tokens < 0 || max_tokens > kMaxPositionEmbeddings) {
    return Status::invalid("--max-tokens must be an integer in [0, {}] (got {})", kMaxPositionEmbeddings, max_tokens);
  }
  // A temperature near 0 would divide the logits into infinities.
  if (!(temperature == 0 || (temperature >= kMinTemperature && temperature <= kMaxTemperature))) {
    return Status::invalid("--temperature must be 0 (greedy) or a number in [{}, {}] (got {})", kMinTemperature,
                           kMaxTemperature, temperature);
  }
  if (!(top_p > 0 && top_p <= 1)) return Status::invalid("--top-p must be a number in (0, 1] (got {})", top_p);
  if (top_k < 0 || top_k > kMaxVocabSize) {
    return Status::invalid("--top-k must be an integer in [0, {}] (0: off) (got {})", kMaxVocabSize, top_k);
  }
  return Status();
}

}  // namespace sc
