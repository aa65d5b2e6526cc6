#include "serve/server_metrics.h"

#include <fmt/format.h>

namespace sc {
namespace {

void metric(std::string& out, const char* name, const char* type, const char* help, uint64_t value) {
  out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, value);
}

void histogram(std::string& out, const char* name, const char* help, const LatencyHistogram& h) {
  out += fmt::format("# HELP {0} {1}\n# TYPE {0} histogram\n", name, help);
  for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, LatencyHistogram::kBounds[i], h.cumulative(i));
  }
  out += fmt::format("{0}_bucket{{le=\"+Inf\"}} {1}\n{0}_sum {2}\n{0}_count {1}\n", name, h.count(), h.sum());
}

}  // namespace

void ServerMetrics::count_response(int status) {
  std::lock_guard lock(mutex_);
  ++responses_by_status_[status];
}

std::string ServerMetrics::render(const Engine::Stats& engine, size_t slots, int64_t step) const {
  std::string out =
      "# HELP supercluster_requests_total HTTP responses sent, by status code.\n"
      "# TYPE supercluster_requests_total counter\n";
  {
    std::lock_guard lock(mutex_);
    for (const auto& [status, count] : responses_by_status_) {
      out += fmt::format("supercluster_requests_total{{status=\"{}\"}} {}\n", status, count);
    }
  }
  metric(out, "supercluster_prompt_tokens_total", "counter", "Prompt tokens prefilled.", engine.prompt_tokens);
  metric(out, "supercluster_generated_tokens_total", "counter", "Tokens generated.", engine.generated_tokens);
  metric(out, "supercluster_requests_cancelled_total", "counter",
         "Generations stopped because their client disconnected.", engine.cancelled);
  metric(out, "supercluster_engine_steps_total", "counter", "Scheduler steps (each one batched decode).", engine.steps);
  metric(out, "supercluster_queue_length", "gauge", "Requests waiting for a slot.", engine.queue_length);
  metric(out, "supercluster_active_slots", "gauge", "KV-cache slots generating.", engine.active_slots);
  metric(out, "supercluster_slots", "gauge", "KV-cache slots in all (--slots).", slots);
  out += fmt::format(
      "# HELP supercluster_tokens_per_second Tokens generated per second over the last 10 s, all requests.\n"
      "# TYPE supercluster_tokens_per_second gauge\nsupercluster_tokens_per_second {}\n",
      engine.tokens_per_second);
  histogram(out, "supercluster_time_to_first_token_seconds",
            "From a request's arrival in the engine to its first token (queue wait and prefill).",
            engine.time_to_first_token);
  histogram(out, "supercluster_time_per_output_token_seconds", "Between consecutive tokens of a request.",
            engine.time_per_token);
  metric(out, "supercluster_checkpoint_step", "gauge", "Training step of the checkpoint served.",
         static_cast<uint64_t>(step));
  metric(out, "supercluster_checkpoint_switches_total", "counter",
         "Switches to a newer checkpoint of the run (serve --follow).", engine.model_switches);
  return out;
}

}  // namespace sc
