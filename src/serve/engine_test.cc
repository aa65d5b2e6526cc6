// The engine's scheduling on a tiny random model: batched answers equal
// solo answers, the queue bound, cancellation freeing a slot, stop strings,
// max_tokens and the context end, draining on shutdown, switching models
// between requests.
#include "serve/engine.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "model/counts.h"

namespace sc {
namespace {

constexpr int64_t kVocab = 40;
constexpr uint32_t kEndOfDocument = 2;

// Random weights: another seed is "the same model trained further", another
// intermediate_size another shape.
struct TinyModel {
  ModelConfig config;
  std::vector<float> params;
  explicit TinyModel(uint32_t seed = 7, int64_t intermediate_size = 24) {
    nlohmann::json j = {{"vocab_size", kVocab},
                        {"hidden_size", 16},
                        {"num_hidden_layers", 2},
                        {"num_attention_heads", 4},
                        {"num_key_value_heads", 2},
                        {"head_dim", 4},
                        {"intermediate_size", intermediate_size},
                        {"max_position_embeddings", 48},
                        {"hidden_act", "gelu_pytorch_tanh"},
                        {"tie_word_embeddings", true}};
    config = *ModelConfig::from_json(j, "tiny");
    const auto layout = parameter_layout(config);
    params.resize(static_cast<size_t>(parameter_buffer_floats(layout)));
    std::mt19937 gen(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const TensorSpec& t : layout) {
      for (int64_t i = 0; i < t.numel(); ++i) params[t.offset + i] = t.is_norm ? 1.0f : 0.5f * normal(gen);
    }
  }
};

const TinyModel& tiny() {
  static const TinyModel model;
  return model;
}

const TinyModel& retrained() {
  static const TinyModel model(8);
  return model;
}

// Each id's text is a letter; the end of document is never shown.
Vocabulary letters() {
  return {.size = kVocab, .end_of_document = kEndOfDocument, .piece_text = [](uint32_t id) {
            return std::string(1, static_cast<char>('A' + id));
          }};
}

// The engine's model over `params` (the server builds it from a checkpoint
// with make_engine_model).
Engine::ModelMaker model_of(const ModelConfig& config, const float* params, Vocabulary vocabulary = letters()) {
  return [=](const InferenceShape& shape) -> Result<std::unique_ptr<EngineModel>> {
    auto model = std::make_unique<EngineModel>();
    SC_ASSIGN_OR_RETURN(model->inference,
                        Inference::create(config, params, shape.max_tokens, shape.max_sequences, *shape.pool,
                                          shape.weights));
    model->vocabulary = vocabulary;
    return model;
  };
}

std::unique_ptr<Engine> make_engine(size_t slots, size_t max_queue, bool start = true, size_t context = 0) {
  auto engine = Engine::create(tiny().config, model_of(tiny().config, tiny().params.data()),
                               {.slots = slots, .context = context, .max_queue = max_queue, .threads = 1}, start);
  EXPECT_TRUE(engine.ok()) << engine.status().message();
  return std::move(engine).value();
}

GenerationRequest request(uint64_t seed, int64_t max_tokens = 20, double temperature = 1.0) {
  GenerationRequest r;
  r.prompt = {kEndOfDocument, static_cast<uint32_t>(5 + seed % 7), static_cast<uint32_t>(11 + seed % 5)};
  r.sampling = {.max_tokens = max_tokens,
                .temperature = temperature,
                .top_p = 1.0,
                .seed = seed,
                .stop_at_end_of_document = false};
  return r;
}

TEST(Engine, EachRequestGetsTheSameAnswerInABatchAsAlone) {
  std::vector<std::string> alone;
  {
    auto engine = make_engine(1, 8);
    for (uint64_t seed = 0; seed < 6; ++seed) {
      auto stream = engine->submit(request(seed, 10 + seed));
      ASSERT_NE(stream, nullptr);
      auto done = stream->wait();
      EXPECT_EQ(done.finish, FinishReason::kLength);
      EXPECT_EQ(done.tokens, 10 + seed);
      alone.push_back(done.text);
    }
  }
  // Six requests of different lengths over three slots: they join and leave
  // the batch at different steps.
  auto engine = make_engine(3, 8, /*start=*/false);
  std::vector<std::shared_ptr<GenerationStream>> streams;
  for (uint64_t seed = 0; seed < 6; ++seed) streams.push_back(engine->submit(request(seed, 10 + seed)));
  engine->start();
  for (uint64_t seed = 0; seed < 6; ++seed) {
    ASSERT_NE(streams[seed], nullptr);
    EXPECT_EQ(streams[seed]->wait().text, alone[seed]) << "seed " << seed;
  }
  const Engine::Stats stats = engine->stats();
  EXPECT_EQ(stats.generated_tokens, 10u + 11 + 12 + 13 + 14 + 15);
  EXPECT_EQ(stats.prompt_tokens, 6u * 3);
  EXPECT_EQ(stats.active_slots, 0u);
  EXPECT_LT(stats.steps, 10u + 11 + 12 + 13 + 14 + 15) << "steps decode several slots at once";
  EXPECT_EQ(stats.time_to_first_token.count(), 6u);
  EXPECT_EQ(stats.time_per_token.count(), stats.generated_tokens - 6);
  EXPECT_LE(stats.time_to_first_token.cumulative(0), stats.time_to_first_token.cumulative(1)) << "cumulative";
  EXPECT_GT(stats.tokens_per_second, 0.0) << "tokens generated within the last seconds";
}

TEST(Engine, GreedyIsDeterministicAndSeedsMatter) {
  auto engine = make_engine(2, 8);
  EXPECT_EQ(engine->submit(request(1, 15, 0.0))->wait().text, engine->submit(request(1, 15, 0.0))->wait().text);
  EXPECT_EQ(engine->submit(request(1, 15))->wait().text, engine->submit(request(1, 15))->wait().text);
  GenerationRequest other_seed = request(1, 15);
  other_seed.sampling.seed = 99;
  EXPECT_NE(engine->submit(request(1, 15))->wait().text, engine->submit(other_seed)->wait().text);
}

TEST(Engine, AFullQueueRefusesAndShutdownDrainsTheRest) {
  auto engine = make_engine(1, 2, /*start=*/false);
  std::vector<std::shared_ptr<GenerationStream>> accepted;
  // One for the free slot, two queued.
  for (int i = 0; i < 3; ++i) accepted.push_back(engine->submit(request(i)));
  for (const auto& s : accepted) ASSERT_NE(s, nullptr);
  EXPECT_EQ(engine->submit(request(9)), nullptr) << "the queue is full";
  EXPECT_EQ(engine->stats().queue_length, 3u);
  engine->shutdown();
  EXPECT_EQ(engine->submit(request(9)), nullptr) << "shutting down";
  engine->join();
  for (const auto& s : accepted) EXPECT_EQ(s->wait().finish, FinishReason::kLength);
}

TEST(Engine, ACancelledRequestFreesItsSlot) {
  // Cancelled before the scheduler runs, so the order is certain: the request
  // takes the only slot, gives it back unrun, and the next one gets it.
  // (tests/cli_serve_test.cc cancels mid-stream by hanging up.)
  auto engine = make_engine(1, 4, /*start=*/false);
  auto first = engine->submit(request(3, 40));
  ASSERT_NE(first, nullptr);
  auto second = engine->submit(request(4, 5));
  ASSERT_NE(second, nullptr);
  first->cancel();
  engine->start();
  EXPECT_EQ(first->wait().finish, FinishReason::kCancelled);
  EXPECT_EQ(first->wait().tokens, 0u);
  EXPECT_EQ(second->wait().finish, FinishReason::kLength);
  EXPECT_EQ(second->wait().tokens, 5u);
  EXPECT_EQ(engine->stats().cancelled, 1u);
}

TEST(Engine, AStopStringEndsTheTextBeforeIt) {
  auto engine = make_engine(1, 4);
  const std::string full = engine->submit(request(5, 20))->wait().text;
  ASSERT_GE(full.size(), 8u);
  GenerationRequest stopped = request(5, 20);
  stopped.stop = {full.substr(4, 2)};
  const auto done = engine->submit(stopped)->wait();
  EXPECT_EQ(done.finish, FinishReason::kStop);
  EXPECT_EQ(done.text, full.substr(0, full.find(full.substr(4, 2))));
}

TEST(Engine, TheContextEndsGenerationWithLength) {
  auto engine = make_engine(2, 4, true, /*context=*/8);
  const auto done = engine->submit(request(6, 100))->wait();
  EXPECT_EQ(done.finish, FinishReason::kLength);
  EXPECT_EQ(done.tokens, 8u - 3 + 1) << "3 prompt tokens: positions 3..7 take sampled tokens, and one more is sampled";
  EXPECT_EQ(engine->submit(request(6, 0))->wait().tokens, 0u);
}

TEST(Engine, BadOptionsAreErrors) {
  const ModelConfig& c = tiny().config;
  const float* params = tiny().params.data();
  EXPECT_FALSE(Engine::create(c, model_of(c, params), {.slots = 0}).ok());
  EXPECT_FALSE(Engine::create(c, model_of(c, params), {.slots = 1, .context = 49}).ok());
  Vocabulary v = letters();
  v.size = kVocab + 1;
  EXPECT_FALSE(Engine::create(c, model_of(c, params, v), {.slots = 1}).ok());
}

// Each request's text on `model` alone.
std::vector<std::string> answers_alone(const TinyModel& model, const std::vector<GenerationRequest>& requests) {
  auto engine = Engine::create(model.config, model_of(model.config, model.params.data()), {.slots = 1, .threads = 1});
  EXPECT_TRUE(engine.ok()) << engine.status().message();
  std::vector<std::string> texts;
  for (const GenerationRequest& r : requests) texts.push_back((*engine)->submit(r)->wait().text);
  return texts;
}

// Letters whose piece_text can hold the scheduler mid-request: once closed,
// the next token's text waits until the gate opens, so a test knows for
// certain that a request is in its slot while it acts.
struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool closed = false, holding = false;

  Vocabulary letters() {
    Vocabulary v = sc::letters();
    v.piece_text = [this, text = v.piece_text](uint32_t id) {
      std::unique_lock lock(mutex);
      holding = closed;
      changed.notify_all();
      changed.wait(lock, [&] { return !closed; });
      holding = false;
      return text(id);
    };
    return v;
  }
  void await_holding() {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return holding; });
  }
  void open() {
    {
      std::lock_guard lock(mutex);
      closed = false;
    }
    changed.notify_all();
  }
};

TEST(Engine, ASwitchWaitsForTheRequestsInSlotsAndTheQueuedOnesRunOnTheNewModel) {
  std::vector<GenerationRequest> requests;
  for (uint64_t seed = 0; seed < 6; ++seed) requests.push_back(request(seed, 12));
  const std::vector<std::string> on_old = answers_alone(tiny(), requests);
  const std::vector<std::string> on_new = answers_alone(retrained(), requests);
  for (size_t i = 0; i < requests.size(); ++i) ASSERT_NE(on_old[i], on_new[i]) << "the models must tell apart";

  // Two slots and one request generating, held at its first token.
  Gate gate;
  gate.closed = true;
  auto engine = Engine::create(tiny().config, model_of(tiny().config, tiny().params.data(), gate.letters()),
                               {.slots = 2, .max_queue = 8, .threads = 1});
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto running = (*engine)->submit(requests[0]);
  ASSERT_NE(running, nullptr);
  gate.await_holding();

  bool switched = false;
  auto next = model_of(retrained().config, retrained().params.data())((*engine)->inference_shape());
  ASSERT_TRUE(next.ok()) << next.status().message();
  ASSERT_TRUE((*engine)->switch_model(std::move(next).value(), [&] { switched = true; }).ok());
  EXPECT_TRUE((*engine)->stats().switch_pending);
  // Requests keep coming while the switch waits: a slot is free, yet they
  // wait (none is refused) instead of postponing the switch.
  std::vector<std::shared_ptr<GenerationStream>> waiting;
  for (size_t i = 1; i < requests.size(); ++i) {
    waiting.push_back((*engine)->submit(requests[i]));
    ASSERT_NE(waiting.back(), nullptr) << "request " << i;
  }
  EXPECT_EQ((*engine)->stats().active_slots, 1u);
  EXPECT_EQ((*engine)->stats().queue_length, requests.size() - 1);
  gate.open();

  EXPECT_EQ(running->wait().text, on_old[0]) << "the request in its slot ran to its end on the old model";
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_EQ(waiting[i - 1]->wait().text, on_new[i]) << "request " << i << " ran on the new model";
  }
  EXPECT_TRUE(switched);
  const Engine::Stats stats = (*engine)->stats();
  EXPECT_EQ(stats.model_switches, 1u);
  EXPECT_FALSE(stats.switch_pending);
}

TEST(Engine, ASwitchToAnotherShapeOrFormatOrASecondPendingOneIsRefused) {
  auto engine = make_engine(1, 4, /*start=*/false);
  const TinyModel wider(7, 32);
  auto other_shape = model_of(wider.config, wider.params.data())(engine->inference_shape());
  ASSERT_TRUE(other_shape.ok()) << other_shape.status().message();
  const Status refused = engine->switch_model(std::move(other_shape).value());
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("intermediate_size"), std::string::npos) << refused.message();

  // The same model in other weights than the engine's (--weights).
  auto other_format = Inference::create(tiny().config, tiny().params.data(), engine->inference_shape().max_tokens,
                                        engine->inference_shape().max_sequences, *engine->inference_shape().pool,
                                        WeightFormat::kBf16);
  ASSERT_TRUE(other_format.ok()) << other_format.status().message();
  auto bf16 = std::make_unique<EngineModel>(
      EngineModel{.owner = nullptr, .inference = std::move(other_format).value(), .vocabulary = letters()});
  const Status wrong_format = engine->switch_model(std::move(bf16));
  EXPECT_FALSE(wrong_format.ok());
  EXPECT_NE(wrong_format.message().find("bf16"), std::string::npos) << wrong_format.message();

  // Not started: the first switch stays pending, and a second is refused.
  const auto retrained_model = model_of(retrained().config, retrained().params.data());
  ASSERT_TRUE(engine->switch_model(retrained_model(engine->inference_shape()).value()).ok());
  const Status second = engine->switch_model(retrained_model(engine->inference_shape()).value());
  EXPECT_FALSE(second.ok());
  EXPECT_NE(second.message().find("pending"), std::string::npos) << second.message();
  engine->start();
  EXPECT_EQ(engine->submit(request(1, 12))->wait().text, answers_alone(retrained(), {request(1, 12)})[0]);
  EXPECT_EQ(engine->stats().model_switches, 1u);
}

}  // namespace
}  // namespace sc
