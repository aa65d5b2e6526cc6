// The server's engine: one scheduler thread runs a continuous batch over a
// fixed number of KV-cache slots. A request waits in a bounded queue, takes
// a free slot, has its prompt prefilled in one forward of its own, and then
// decodes one token per step together with every other active slot in ONE
// batched Inference::decode. Requests join and leave between steps; a slot is
// free again the step after its request finishes or its consumer cancels.
//
// A request's tokens depend only on its prompt, its sampling options and its
// seed, never on what else is in the batch: each row of a batched decode is
// the same computation as decoding it alone, and sampling draws from a
// counter-based generator keyed by the request's seed and the token's index.
//
// The model can be replaced while the engine runs (`serve --follow`), but
// only between requests: every slot decodes in the same forward over the
// same weights, so the engine stops admitting, lets the slots empty, and
// switches before it admits again (switch_model).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/config.h"
#include "model/inference.h"
#include "serve/latency_histogram.h"
#include "serve/sampling.h"
#include "serve/stop_strings.h"

namespace sc {

// What the engine needs of a tokenizer: ids it may sample, the end of a
// document, and the text of one id (the server passes the checkpoint's
// tokenizer; tests a stand-in).
struct Vocabulary {
  size_t size = 0;
  uint32_t end_of_document = 0;
  std::function<std::string(uint32_t)> piece_text;
};

// How an engine's Inference is sized, where it runs and the format of its
// matrices: what whoever builds an EngineModel for that engine must build it
// with.
struct InferenceShape {
  size_t max_tokens = 0;     // token rows per forward (a prefill chunk)
  size_t max_sequences = 0;  // logits rows per forward: the engine's slots
  ThreadPool* pool = nullptr;
  WeightFormat weights = WeightFormat::kF32;  // EngineOptions::weights
};

// What the engine decodes with: an Inference and the vocabulary of its
// tokens. Both may point into memory they do not own (a loaded checkpoint's
// weights and tokenizer): `owner` keeps that alive for as long as the engine
// uses the model, and is released when the engine switches away from it.
struct EngineModel {
  std::shared_ptr<const void> owner;  // first: destroyed after what reads it
  std::unique_ptr<Inference> inference;
  Vocabulary vocabulary;
};

// The config.json fields in which two models differ, their training
// defaults aside; a model may replace an engine's only when there are none
// (its KV cache and buffers were sized for the first).
std::vector<std::string> model_differences(const ModelConfig& a, const ModelConfig& b);

struct EngineOptions {
  size_t slots = 1;
  size_t context = 0;     // positions per slot; 0: the model's max_position_embeddings
  size_t max_queue = 64;  // requests waiting for a slot; one more is refused
  size_t threads = 1;     // of the model's forwards
  WeightFormat weights = WeightFormat::kF32;  // the format decode multiplies in
  // A pause after every step: a test hook (SUPERCLUSTER_SERVE_STEP_DELAY_MS)
  // that keeps requests in their slots long enough for a test to see a full
  // queue or to disconnect mid-stream. Zero in real use.
  std::chrono::milliseconds step_delay{0};
};

struct GenerationRequest {
  std::vector<uint32_t> prompt;  // from the end-of-document token; shorter than the context
  SamplingOptions sampling;      // max_tokens already capped to the context
  std::vector<std::string> stop;
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", ...

// One request's output, written by the scheduler and read by whoever
// submitted it (an HTTP handler's thread). Thread-safe.
class GenerationStream {
 public:
  struct Update {
    std::string text;                           // shown since the previous update
    size_t tokens = 0;                          // generated so far in all
    FinishReason finish = FinishReason::kNone;  // kNone: more may follow
    std::string error;                          // with kError
  };
  // Blocks until there is new text or the request has finished.
  Update next();
  // Blocks until the request has finished; all its text.
  Update wait();
  // The consumer is gone (a client disconnected): the engine stops the
  // request and frees its slot at its next step.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }
  size_t prompt_tokens() const { return prompt_tokens_; }

 private:
  friend class Engine;
  explicit GenerationStream(size_t prompt_tokens) : prompt_tokens_(prompt_tokens) {}
  using Clock = std::chrono::steady_clock;
  void push(const std::string& text, bool counts_token);
  void finish(FinishReason reason, std::string error = {});

  const size_t prompt_tokens_;
  const Clock::time_point submitted_ = Clock::now();
  Clock::time_point last_token_;  // the scheduler's alone
  std::atomic<bool> cancelled_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string unread_;
  size_t tokens_ = 0;
  FinishReason finish_ = FinishReason::kNone;
  std::string error_;
};

class Engine {
 public:
  // Builds an engine's model for the given shape (serve/engine_model.h's
  // make_engine_model for a checkpoint; tests their own).
  using ModelMaker = std::function<Result<std::unique_ptr<EngineModel>>(const InferenceShape&)>;

  // An engine for models of `config`: its thread pool, KV cache and slots,
  // then its first model from make_model(inference_shape()). With start =
  // false the scheduler waits for start() (tests fill the queue first).
  static Result<std::unique_ptr<Engine>> create(const ModelConfig& config, const ModelMaker& make_model,
                                                const EngineOptions& options, bool start = true);
  ~Engine();  // shutdown(), then waits for the scheduler

  void start();
  size_t context() const { return context_; }
  size_t slots() const { return options_.slots; }
  // What a model given to switch_model must be built for. Any thread.
  InferenceShape inference_shape() const;

  // Decodes with `next` from the first moment no request is in a slot. From
  // this call on the engine admits no queued request, so the switch waits
  // only for the requests already generating (each at most --ctx tokens),
  // however many keep arriving; the queued ones wait (none is refused for
  // it) and run on `next`, in their order. `on_switched` runs on the
  // scheduler thread once `next` is in use, before any request runs on it.
  // An error, and nothing changes, when `next` is not the same model shape
  // as the engine's, when a switch is pending already, or when shutting down.
  Status switch_model(std::unique_ptr<EngineModel> next, std::function<void()> on_switched = {});

  // Queues a request; null when the queue is full or the engine is shutting
  // down (the server answers 503). The request must be valid: a prompt of 1
  // to context - 1 tokens and options that validate().
  std::shared_ptr<GenerationStream> submit(GenerationRequest request);

  // No new requests; the queued and active ones run to their end.
  void shutdown();
  // Blocks until the scheduler has finished everything after shutdown().
  void join();

  struct Stats {
    size_t queue_length = 0, active_slots = 0;
    uint64_t prompt_tokens = 0, generated_tokens = 0, cancelled = 0, steps = 0;
    LatencyHistogram time_to_first_token;  // from submit() to the first token sampled
    LatencyHistogram time_per_token;       // between a request's consecutive tokens
    double tokens_per_second = 0;          // generated over the last few seconds, all requests
    uint64_t model_switches = 0;           // switch_model calls carried out
    bool switch_pending = false;           // one waits for the slots to empty
  };
  Stats stats() const;

 private:
  struct Slot {
    std::shared_ptr<GenerationStream> stream;  // null: free
    GenerationRequest request;
    size_t position = 0;  // where `next_token` goes
    uint32_t next_token = 0;
    uint64_t generated = 0;
    StopStringMatcher stop;
  };
  struct Queued {
    GenerationRequest request;
    std::shared_ptr<GenerationStream> stream;
  };

  Engine(const ModelConfig& config, const EngineOptions& options) : config_(config), options_(options) {}
  Status check_model(const EngineModel& model) const;
  void run();
  // Samples slot s's next token from `logits` and hands its text to the
  // stream; frees the slot when the request is done.
  void take_token(size_t s, const float* logits);
  void release(size_t s, FinishReason reason, const std::string& error = {});

  const ModelConfig config_;  // of the first model; every later one has the same shape
  const EngineOptions options_;
  size_t context_ = 0;
  std::unique_ptr<ThreadPool> pool_;
  KvCache cache_;
  std::unique_ptr<EngineModel> model_;  // the scheduler's alone once it runs
  std::unique_ptr<Sampler> sampler_;
  size_t sampler_vocabulary_ = 0;  // ids the sampler draws from: every model's vocabulary size
  std::vector<Slot> slots_;        // the scheduler's alone

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Queued> queue_;
  // A model waiting for the slots to empty (switch_model): while it waits,
  // nothing is admitted.
  std::unique_ptr<EngineModel> next_model_;
  std::function<void()> on_switched_;
  size_t active_ = 0;
  bool started_ = false, stopping_ = false;
  Stats totals_;
  // (time of a step, tokens it generated) over the last kRateWindow, for
  // Stats::tokens_per_second.
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> recent_steps_;
  std::thread scheduler_;
};

}  // namespace sc
