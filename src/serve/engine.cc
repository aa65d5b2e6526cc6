#include "serve/engine.h"

#include <algorithm>
#include <utility>

namespace sc {

// Stats::tokens_per_second averages over this much recent time.
constexpr std::chrono::seconds kRateWindow{10};

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "?";
}

void GenerationStream::push(const std::string& text, bool counts_token) {
  {
    std::lock_guard lock(mutex_);
    unread_ += text;
    if (counts_token) ++tokens_;
  }
  changed_.notify_all();
}

void GenerationStream::finish(FinishReason reason, std::string error) {
  {
    std::lock_guard lock(mutex_);
    finish_ = reason;
    error_ = std::move(error);
  }
  changed_.notify_all();
}

GenerationStream::Update GenerationStream::next() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !unread_.empty() || finish_ != FinishReason::kNone; });
  Update update{.text = std::move(unread_), .tokens = tokens_, .finish = finish_, .error = error_};
  unread_.clear();
  return update;
}

GenerationStream::Update GenerationStream::wait() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return finish_ != FinishReason::kNone; });
  Update update{.text = std::move(unread_), .tokens = tokens_, .finish = finish_, .error = error_};
  unread_.clear();
  return update;
}

std::vector<std::string> model_differences(const ModelConfig& a, const ModelConfig& b) {
  nlohmann::json ja = a.to_json(), jb = b.to_json();
  // Defaults of `train`'s flags: a resumed run may change them, the model stays.
  ja.erase("training");
  jb.erase("training");
  std::vector<std::string> fields;
  for (const auto& [field, value] : ja.items()) {
    if (!jb.contains(field) || jb[field] != value) fields.push_back(field);
  }
  for (const auto& [field, value] : jb.items()) {
    if (!ja.contains(field)) fields.push_back(field);
  }
  return fields;
}

Result<std::unique_ptr<Engine>> Engine::create(const ModelConfig& config, const ModelMaker& make_model,
                                               const EngineOptions& options, bool start) {
  const size_t model_context = static_cast<size_t>(config.max_position_embeddings);
  if (options.slots == 0) return Status::invalid("engine: 0 slots; at least 1");
  if (options.context > model_context) {
    return Status::invalid("engine: a context of {} positions; the model has {} (max_position_embeddings)",
                           options.context, model_context);
  }
  std::unique_ptr<Engine> e(new Engine(config, options));
  e->context_ = options.context == 0 ? model_context : options.context;
  if (e->context_ < 2) return Status::invalid("engine: a context of {} positions; at least 2", e->context_);
  e->pool_ = std::make_unique<ThreadPool>(std::max<size_t>(1, options.threads));
  SC_ASSIGN_OR_RETURN(e->cache_, KvCache::create(config, options.slots, e->context_));
  SC_ASSIGN_OR_RETURN(e->model_, make_model(e->inference_shape()));
  SC_RETURN_IF_ERROR(e->check_model(*e->model_));
  e->sampler_vocabulary_ = e->model_->vocabulary.size;
  e->sampler_ = std::make_unique<Sampler>(e->sampler_vocabulary_);
  e->slots_.resize(options.slots);
  e->scheduler_ = std::thread([engine = e.get()] { engine->run(); });
  if (start) e->start();
  return e;
}

InferenceShape Engine::inference_shape() const {
  return {.max_tokens = std::min(context_, kPrefillTokensPerForward),
          .max_sequences = options_.slots,
          .pool = pool_.get(),
          .weights = options_.weights};
}

Status Engine::check_model(const EngineModel& model) const {
  if (!model.inference) return Status::invalid("engine: a model without an Inference");
  const std::vector<std::string> differences = model_differences(model.inference->config(), config_);
  if (!differences.empty()) {
    return Status::invalid("engine: a model that differs from the engine's in {}", fmt::join(differences, ", "));
  }
  const InferenceShape shape = inference_shape();
  if (model.inference->max_tokens() != shape.max_tokens || model.inference->max_sequences() != shape.max_sequences) {
    return Status::invalid("engine: an Inference for {} tokens and {} sequences; the engine needs {} and {}",
                           model.inference->max_tokens(), model.inference->max_sequences(), shape.max_tokens,
                           shape.max_sequences);
  }
  if (model.inference->weight_format() != shape.weights) {
    return Status::invalid("engine: an Inference in {} weights; the engine's are {}",
                           weight_format_name(model.inference->weight_format()), weight_format_name(shape.weights));
  }
  const Vocabulary& vocabulary = model.vocabulary;
  if (vocabulary.size == 0 || vocabulary.size > static_cast<size_t>(config_.vocab_size) || !vocabulary.piece_text) {
    return Status::invalid("engine: a vocabulary of {} ids for a model of {}", vocabulary.size, config_.vocab_size);
  }
  // The sampler is sized for the first model's vocabulary.
  if (sampler_ && vocabulary.size != sampler_vocabulary_) {
    return Status::invalid("engine: a vocabulary of {} ids; the engine's has {}", vocabulary.size, sampler_vocabulary_);
  }
  return Status();
}

Status Engine::switch_model(std::unique_ptr<EngineModel> next, std::function<void()> on_switched) {
  if (!next) return Status::invalid("engine: no model to switch to");
  SC_RETURN_IF_ERROR(check_model(*next));
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return Status::invalid("engine: shutting down; not switching models");
    if (next_model_) return Status::invalid("engine: a model switch is pending already");
    next_model_ = std::move(next);
    on_switched_ = std::move(on_switched);
  }
  wake_.notify_all();
  return Status();
}

Engine::~Engine() {
  shutdown();
  join();
}

void Engine::start() {
  {
    std::lock_guard lock(mutex_);
    started_ = true;
  }
  wake_.notify_all();
}

void Engine::shutdown() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    started_ = true;  // a never-started engine still drains what it queued
  }
  wake_.notify_all();
}

void Engine::join() {
  if (scheduler_.joinable()) scheduler_.join();
}

std::shared_ptr<GenerationStream> Engine::submit(GenerationRequest request) {
  std::shared_ptr<GenerationStream> stream(new GenerationStream(request.prompt.size()));
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= options_.max_queue + (options_.slots - active_)) {
      // Free slots take requests at the next step: they count as room too.
      return nullptr;
    }
    queue_.push_back({std::move(request), stream});
  }
  wake_.notify_all();
  return stream;
}

Engine::Stats Engine::stats() const {
  std::lock_guard lock(mutex_);
  Stats s = totals_;
  const auto since = std::chrono::steady_clock::now() - kRateWindow;
  uint64_t recent_tokens = 0;
  for (const auto& [at, tokens] : recent_steps_) recent_tokens += at >= since ? tokens : 0;
  s.tokens_per_second = static_cast<double>(recent_tokens) / static_cast<double>(kRateWindow.count());
  s.queue_length = queue_.size();
  s.active_slots = active_;
  s.switch_pending = next_model_ != nullptr;
  return s;
}

void Engine::release(size_t s, FinishReason reason, const std::string& error) {
  Slot& slot = slots_[s];
  if (reason == FinishReason::kStop || reason == FinishReason::kLength) {
    // Text held back as a possible stop string is final now.
    if (!slot.stop.stopped()) {
      const std::string rest = slot.stop.flush();
      if (!rest.empty()) slot.stream->push(rest, false);
    }
  }
  {
    // Counted before the consumer hears of the end: who sees a finished
    // request sees its slot free.
    std::lock_guard lock(mutex_);
    --active_;
    if (reason == FinishReason::kCancelled) ++totals_.cancelled;
  }
  slot.stream->finish(reason, error);
  slot.stream.reset();
}

void Engine::take_token(size_t s, const float* logits) {
  Slot& slot = slots_[s];
  const SamplingOptions& options = slot.request.sampling;
  const Vocabulary& vocabulary = model_->vocabulary;
  const uint32_t token = sampler_->sample(logits, options, slot.generated);
  if (options.stop_at_end_of_document && token == vocabulary.end_of_document) {
    release(s, FinishReason::kStop);
    return;
  }
  ++slot.generated;
  {
    const auto now = GenerationStream::Clock::now();
    GenerationStream& stream = *slot.stream;
    const bool first = slot.generated == 1;
    const double seconds =
        std::chrono::duration<double>(now - (first ? stream.submitted_ : stream.last_token_)).count();
    stream.last_token_ = now;
    std::lock_guard lock(mutex_);
    ++totals_.generated_tokens;
    (first ? totals_.time_to_first_token : totals_.time_per_token).add(seconds);
  }
  slot.stream->push(slot.stop.add(vocabulary.piece_text(token)), true);
  if (slot.stop.stopped()) {
    release(s, FinishReason::kStop);
    return;
  }
  // The token goes to the next position; there must be one, and room in max_tokens.
  if (slot.generated >= static_cast<uint64_t>(options.max_tokens) || slot.position + 1 >= context_) {
    release(s, FinishReason::kLength);
    return;
  }
  slot.next_token = token;
  ++slot.position;
}

void Engine::run() {
  std::vector<size_t> admitted, decode_slots, decode_positions;
  std::vector<uint32_t> decode_tokens;
  uint64_t generated_before_step = 0;
  while (true) {
    admitted.clear();
    std::unique_ptr<EngineModel> previous_model;
    std::function<void()> on_switched;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return started_ && (stopping_ || !queue_.empty() || active_ > 0 || next_model_); });
      if (stopping_ && queue_.empty() && active_ == 0) return;
      // A pending model is switched to once no slot holds a request; until
      // then nothing is admitted (every slot shares the forward's weights).
      if (next_model_ && active_ == 0) {
        previous_model = std::exchange(model_, std::move(next_model_));
        on_switched = std::move(on_switched_);
        ++totals_.model_switches;
      }
      for (size_t s = 0; s < slots_.size() && !queue_.empty() && !next_model_; ++s) {
        if (slots_[s].stream) continue;
        Queued next = std::move(queue_.front());
        queue_.pop_front();
        slots_[s].stream = std::move(next.stream);
        slots_[s].request = std::move(next.request);
        ++active_;
        totals_.prompt_tokens += slots_[s].request.prompt.size();
        admitted.push_back(s);
      }
      ++totals_.steps;
      generated_before_step = totals_.generated_tokens;
    }
    if (on_switched) on_switched();
    previous_model.reset();  // its weights may go now: nothing reads them
    // A request whose consumer left gives its slot back before any work.
    for (size_t s = 0; s < slots_.size(); ++s) {
      if (slots_[s].stream && slots_[s].stream->cancelled()) release(s, FinishReason::kCancelled);
    }
    // New prompts: one prefill each, and their first token.
    for (const size_t s : admitted) {
      Slot& slot = slots_[s];
      if (!slot.stream) continue;  // cancelled already
      slot.generated = 0;
      slot.stop = StopStringMatcher(slot.request.stop);
      if (slot.request.sampling.max_tokens == 0) {
        release(s, FinishReason::kLength);
        continue;
      }
      const Inference::Sequence prompt{.tokens = slot.request.prompt, .slot = s, .position = 0};
      auto logits = model_->inference->prefill(cache_, {&prompt, 1});
      if (!logits.ok()) {
        release(s, FinishReason::kError, logits.status().message());
        continue;
      }
      slot.position = slot.request.prompt.size() - 1;  // of the last token fed
      take_token(s, *logits);
    }
    // Every active slot's next token in one batched forward. A slot admitted
    // this step joins it: its first token is sampled, its second is due.
    decode_tokens.clear();
    decode_slots.clear();
    decode_positions.clear();
    for (size_t s = 0; s < slots_.size(); ++s) {
      if (!slots_[s].stream || slots_[s].generated == 0) continue;
      decode_tokens.push_back(slots_[s].next_token);
      decode_slots.push_back(s);
      decode_positions.push_back(slots_[s].position);
    }
    if (!decode_slots.empty()) {
      auto logits = model_->inference->decode(cache_, decode_tokens, decode_slots, decode_positions);
      const size_t V = static_cast<size_t>(config_.vocab_size);
      for (size_t i = 0; i < decode_slots.size(); ++i) {
        if (!logits.ok()) {
          release(decode_slots[i], FinishReason::kError, logits.status().message());
        } else {
          take_token(decode_slots[i], *logits + i * V);
        }
      }
    }
    {
      std::lock_guard lock(mutex_);
      const auto now = std::chrono::steady_clock::now();
      recent_steps_.emplace_back(now, totals_.generated_tokens - generated_before_step);
      while (!recent_steps_.empty() && recent_steps_.front().first < now - kRateWindow) recent_steps_.pop_front();
    }
    if (options_.step_delay.count() > 0) std::this_thread::sleep_for(options_.step_delay);
  }
}

}  // namespace sc
