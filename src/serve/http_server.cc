#include "serve/http_server.h"

#include <signal.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <memory>
#include <random>
#include <thread>

#include "core/log.h"
#include "run/checkpoint_store.h"
#include "serve/chat_page.h"
#include "serve/chat_template.h"
#include "serve/engine.h"
#include "serve/engine_model.h"
#include "serve/http.h"
#include "serve/loaded_model.h"
#include "serve/openai_api.h"
#include "serve/server_metrics.h"

namespace sc {
namespace {

// Compares the whole length whatever the first difference, so the time an
// answer takes says nothing about how much of a guessed key was right.
bool same_key_constant_time(std::string_view given, std::string_view expected) {
  unsigned char difference = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    difference |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  }
  return difference == 0;
}

void send_error(httplib::Response& res, const ApiError& error) {
  res.status = error.status;
  res.set_content(json_text(error.to_json()), "application/json");
}

void send_json(httplib::Response& res, const nlohmann::json& body) {
  res.status = 200;
  res.set_content(json_text(body), "application/json");
}

ApiError unavailable(std::string message) { return server_error(503, std::move(message), "unavailable"); }

// Requests being answered, so shutdown can wait for the last one. A streamed
// response holds its ticket until the stream is done.
class InFlight {
 public:
  struct Ticket {
    explicit Ticket(InFlight& f) : flight(f) { flight.count_.fetch_add(1); }
    ~Ticket() { flight.count_.fetch_sub(1); }
    InFlight& flight;
  };
  size_t count() const { return count_.load(); }

 private:
  std::atomic<size_t> count_{0};
};

// The checkpoint served and what handlers take from it: its tokenizer (the
// engine's model is the same checkpoint's) and chat template. A --follow
// switch replaces it whole; a handler keeps the copy it took for its request.
struct Served {
  std::shared_ptr<const LoadedModel> model;
  ChatTemplate chat_template;
};

// Everything the handlers share. The engine and the first Served appear once
// loading has finished (`ready`); the engine is never replaced.
struct ServerState {
  ServeOptions options;
  std::atomic<bool> ready{false}, draining{false};
  std::unique_ptr<Engine> engine;
  std::string model_id;
  ServerMetrics metrics;
  InFlight in_flight;
  std::atomic<uint64_t> next_request_id{1};
  // The step a loaded checkpoint waits to be switched to, -1 when none.
  std::atomic<int64_t> switching_to_step{-1};

  std::shared_ptr<const Served> served() const {
    std::lock_guard lock(served_mutex);
    return served_;
  }
  void set_served(std::shared_ptr<const Served> next) {
    std::lock_guard lock(served_mutex);
    served_ = std::move(next);
  }

 private:
  mutable std::mutex served_mutex;
  std::shared_ptr<const Served> served_;
};

// Unless the server can take a request now, an answer saying why.
std::optional<ApiError> not_serving(const ServerState& s) {
  if (s.draining.load()) return unavailable("the server is shutting down");
  if (!s.ready.load()) return unavailable("the model is loading");
  return std::nullopt;
}

void handle_completion(ServerState& s, const httplib::Request& req, httplib::Response& res, bool chat) {
  auto ticket = std::make_shared<InFlight::Ticket>(s.in_flight);
  if (auto error = not_serving(s)) return send_error(res, *error);
  CompletionParams params;
  if (auto error = parse_completion_request(req.body, chat, &params)) return send_error(res, *error);
  // A switch may come while the request waits: a checkpoint may replace the
  // served one only with the same pieces for every id (check_can_replace),
  // so the ids encoded here mean the same to whichever model runs them.
  const std::shared_ptr<const Served> served = s.served();
  GenerationRequest request;
  std::string prompt_text = params.prompt;
  if (chat) {
    auto rendered = served->chat_template.render(params.messages);
    if (!rendered.ok()) return send_error(res, bad_request(rendered.status().message(), "messages"));
    prompt_text = *rendered;
    request.stop = served->chat_template.stop;
  }
  request.stop.insert(request.stop.end(), params.stop.begin(), params.stop.end());
  const Tokenizer& tokenizer = served->model->tokenizer();
  // Training documents follow an end-of-document token: so does the prompt.
  request.prompt.push_back(tokenizer.end_of_document_id());
  std::vector<uint32_t> ids;
  if (Status encoded = tokenizer.encode(prompt_text, &ids); !encoded.ok()) {
    return send_error(res, bad_request(encoded.message(), chat ? "messages" : "prompt"));
  }
  request.prompt.insert(request.prompt.end(), ids.begin(), ids.end());
  const size_t context = s.engine->context();
  if (request.prompt.size() >= context) {
    return send_error(res, bad_request(fmt::format("the prompt is {} tokens (with the start token); the context is {} "
                                                   "and leaves no room to generate",
                                                   request.prompt.size(), context),
                                       chat ? "messages" : "prompt", "context_length_exceeded"));
  }
  request.sampling = params.sampling;
  request.sampling.max_tokens =
      std::min<int64_t>(params.max_tokens.value_or(kDefaultMaxTokens), static_cast<int64_t>(context));
  request.sampling.seed = params.seed ? *params.seed : std::random_device()();
  request.sampling.stop_at_end_of_document = !params.ignore_eos;
  const size_t prompt_tokens = request.prompt.size();
  std::shared_ptr<GenerationStream> stream = s.engine->submit(std::move(request));
  if (!stream) {
    res.set_header("Retry-After", "1");
    return send_error(res, unavailable(s.draining.load() ? "the server is shutting down"
                                                         : "every slot is busy and the queue is full; retry later"));
  }
  const CompletionInfo info{.id = fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", s.next_request_id.fetch_add(1)),
                            .model = s.model_id,
                            .created = static_cast<int64_t>(std::time(nullptr)),
                            .chat = chat};
  if (!params.stream) {
    const GenerationStream::Update done = stream->wait();
    if (done.finish == FinishReason::kError) {
      return send_error(res, server_error(500, done.error));
    }
    return send_json(res, completion_response(info, done.text, done.finish, prompt_tokens, done.tokens));
  }
  // Server-Sent Events: a chunk per update, the last with the finish reason
  // and usage, then [DONE]. A write that fails means the client is gone:
  // the request is cancelled and its slot freed.
  auto finished = std::make_shared<bool>(false);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [stream, info, prompt_tokens, finished, ticket](size_t, httplib::DataSink& sink) {
        if (*finished) {
          sink.done();
          return true;
        }
        const GenerationStream::Update update = stream->next();
        std::string out;
        if (update.finish == FinishReason::kError) {
          out = "data: " + json_text(server_error(500, update.error).to_json()) + "\n\n";
        } else if (!update.text.empty() || update.finish != FinishReason::kNone) {
          out = completion_chunk(info, update.text, update.finish, prompt_tokens, update.tokens);
        }
        if (update.finish != FinishReason::kNone) {
          out += kStreamDone;
          *finished = true;
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          stream->cancel();
          return false;
        }
        return true;
      },
      [stream](bool success) {
        if (!success) stream->cancel();
      });
}

void add_routes(httplib::Server& server, ServerState& s) {
  server.Get("/health", [&s](const httplib::Request&, httplib::Response& res) {
    if (auto error = not_serving(s)) return send_error(res, *error);
    const std::shared_ptr<const Served> served = s.served();
    nlohmann::json health = {{"status", "ok"},
                             {"checkpoint", served->model->checkpoint()},
                             {"step", served->model->step()},
                             {"slots", s.engine->slots()},
                             {"context", s.engine->context()},
                             {"follow", s.options.follow}};
    // A newer checkpoint is loaded and waits for the requests generating now.
    if (const int64_t next = s.switching_to_step.load(); next >= 0) health["switching_to_step"] = next;
    send_json(res, health);
  });
  server.Get("/v1/models", [&s](const httplib::Request&, httplib::Response& res) {
    if (auto error = not_serving(s)) return send_error(res, *error);
    const std::shared_ptr<const Served> served = s.served();
    send_json(res, {{"object", "list"},
                    {"data", nlohmann::json::array({{{"id", s.model_id},
                                                     {"object", "model"},
                                                     {"created", 0},
                                                     {"owned_by", "supercluster"},
                                                     {"checkpoint", served->model->checkpoint()},
                                                     {"step", served->model->step()},
                                                     {"context", s.engine->context()}}})}});
  });
  server.Post("/v1/completions",
              [&s](const httplib::Request& req, httplib::Response& res) { handle_completion(s, req, res, false); });
  server.Post("/v1/chat/completions",
              [&s](const httplib::Request& req, httplib::Response& res) { handle_completion(s, req, res, true); });
  server.Post("/tokenize", [&s](const httplib::Request& req, httplib::Response& res) {
    if (auto error = not_serving(s)) return send_error(res, *error);
    std::string content;
    if (auto error = parse_tokenize_request(req.body, &content)) return send_error(res, *error);
    std::vector<uint32_t> ids;
    if (Status encoded = s.served()->model->tokenizer().encode(content, &ids); !encoded.ok()) {
      return send_error(res, bad_request(encoded.message(), "content"));
    }
    send_json(res, {{"tokens", ids}});
  });
  server.Post("/detokenize", [&s](const httplib::Request& req, httplib::Response& res) {
    if (auto error = not_serving(s)) return send_error(res, *error);
    const std::shared_ptr<const Served> served = s.served();
    std::vector<uint32_t> ids;
    if (auto error = parse_detokenize_request(req.body, served->model->tokenizer().vocab_size(), &ids)) {
      return send_error(res, *error);
    }
    auto text = served->model->tokenizer().decode(ids);
    if (!text.ok()) return send_error(res, bad_request(text.status().message(), "tokens"));
    send_json(res, {{"content", *text}});
  });
  server.Get("/metrics", [&s](const httplib::Request&, httplib::Response& res) {
    const Engine::Stats stats = s.ready.load() ? s.engine->stats() : Engine::Stats{};
    res.set_content(s.metrics.render(stats, s.options.slots, s.ready.load() ? s.served()->model->step() : 0),
                    "text/plain; version=0.0.4");
  });
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(chat_page_html()), "text/html; charset=utf-8");
  });
}

// The key guards what costs compute or reveals the model; the page, /health
// and /metrics stay open to a load balancer and a scraper.
bool needs_key(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 || path == "/tokenize" || path == "/detokenize";
}

void configure(httplib::Server& server, ServerState& s) {
  server.set_payload_max_length(kMaxRequestBodyBytes);
  // Each streaming request holds an HTTP thread for its whole generation:
  // enough threads for every slot and queue place, and a few for the rest.
  const size_t http_threads = std::min<size_t>(s.options.slots + s.options.max_queue + 8, 1024);
  server.new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
  server.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
    if (s.options.api_key.empty() || !needs_key(req.path)) return httplib::Server::HandlerResponse::Unhandled;
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    const std::string_view given =
        header.rfind(kBearer, 0) == 0 ? std::string_view(header).substr(kBearer.size()) : std::string_view();
    if (same_key_constant_time(given, s.options.api_key)) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res,
               server_error(401, "a missing or wrong API key: send 'Authorization: Bearer KEY'", "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  // Answers httplib makes itself (404, 413 for an oversized body, 400 for a
  // broken request line) get the API's error object too.
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message = res.status == 404 ? fmt::format("no endpoint {} {}", req.method, req.path)
                                : res.status == 413
                                    ? fmt::format("the request body is larger than {} bytes", kMaxRequestBodyBytes)
                                    : fmt::format("HTTP {}", res.status);
    ApiError error = bad_request(message);
    error.status = res.status;
    res.set_content(json_text(error.to_json()), "application/json");
  });
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, server_error(500, "internal error"));
  });
  server.set_logger(
      [&s](const httplib::Request&, const httplib::Response& res) { s.metrics.count_response(res.status); });
  add_routes(server, s);
}

Status load(ServerState& s) {
  if (s.options.follow && is_one_checkpoint(s.options.checkpoint)) {
    return Status::invalid("--follow watches a run for new checkpoints; {} is one checkpoint: give its run directory "
                           "or checkpoints/",
                           s.options.checkpoint);
  }
  SC_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> model, LoadedModel::load(s.options.checkpoint));
  SC_ASSIGN_OR_RETURN(ChatTemplate chat_template, ChatTemplate::load(model->checkpoint()));
  const std::filesystem::path checkpoint(model->checkpoint());
  // The run's name when the checkpoint is in a run's checkpoints/.
  s.model_id = checkpoint.parent_path().filename() == "checkpoints"
                   ? checkpoint.parent_path().parent_path().filename().string()
                   : checkpoint.filename().string();
  auto engine =
      Engine::create(model->config(), [&](const InferenceShape& shape) { return make_engine_model(model, shape); },
                     {.slots = s.options.slots,
                      .context = s.options.context,
                      .max_queue = s.options.max_queue,
                      .threads = s.options.threads,
                      .weights = s.options.weights,
                      .step_delay = s.options.step_delay});
  if (!engine.ok()) return engine.status().with_context(model->checkpoint());
  s.engine = std::move(engine).value();
  s.set_served(std::make_shared<const Served>(Served{std::move(model), std::move(chat_template)}));
  return Status();
}

// --follow: makes `next` the model served once the requests generating now
// have finished (Engine::switch_model), or says why it cannot be.
Status switch_to(ServerState& s, std::shared_ptr<const LoadedModel> next) {
  const std::shared_ptr<const Served> served = s.served();
  SC_RETURN_IF_ERROR(check_can_replace(*served->model, *next));
  SC_ASSIGN_OR_RETURN(ChatTemplate chat_template, ChatTemplate::load(next->checkpoint()));
  SC_ASSIGN_OR_RETURN(std::unique_ptr<EngineModel> engine_model, make_engine_model(next, s.engine->inference_shape()));
  auto next_served = std::make_shared<const Served>(Served{next, std::move(chat_template)});
  s.switching_to_step.store(next->step());
  std::fprintf(stderr, "supercluster serve: loaded step %lld from %s; switching when the requests generating now end\n",
               static_cast<long long>(next->step()), next->checkpoint().c_str());
  Status switched = s.engine->switch_model(std::move(engine_model), [&s, next_served] {
    const std::shared_ptr<const Served> previous = s.served();
    s.set_served(next_served);
    s.switching_to_step.store(-1);
    std::fprintf(stderr, "supercluster serve: serving step %lld from %s, was step %lld\n",
                 static_cast<long long>(next_served->model->step()), next_served->model->checkpoint().c_str(),
                 static_cast<long long>(previous->model->step()));
  });
  if (!switched.ok()) s.switching_to_step.store(-1);
  return switched;
}

}  // namespace

// The stop signal received, 0 until one is. Written by the handler (an
// async-signal-safe store, whichever thread the kernel picked: OpenBLAS's
// threads start before main and do not block signals), read by the thread
// that drains.
std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int signal) { g_stop_signal.store(signal); }

Status serve(const ServeOptions& options) {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  // A client that hangs up makes the next write fail (and cancels its
  // request); it must not kill the server.
  ::signal(SIGPIPE, SIG_IGN);

  ServerState s;
  s.options = options;
  httplib::Server server;
  configure(server, s);
  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
    if (port < 0) return Status::io_error("serve: cannot bind {} to a free port", options.host);
  } else if (!server.bind_to_port(options.host, port)) {
    return Status::io_error("serve: cannot bind {}:{} (in use, or not an address of this machine)", options.host, port);
  }
  std::fprintf(stderr, "supercluster serve: listening on http://%s:%d, loading %s\n", options.host.c_str(), port,
               options.checkpoint.c_str());
  std::atomic<bool> listener_returned{false};
  std::thread listener([&] {
    server.listen_after_bind();
    listener_returned.store(true);
  });

  std::atomic<bool> done{false};
  // Waits for a stop signal, then drains: new requests are refused, the
  // engine finishes what it holds, the last responses are written.
  std::thread stopper([&] {
    while (!done.load() && g_stop_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    s.draining.store(true);
    if (s.ready.load()) s.engine->shutdown();
    while (s.in_flight.count() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // httplib's stop() does nothing until listen has marked the server
    // running, and listen then blocks for ever: a checkpoint that fails to
    // load at once (or an early signal) could stop before the listener
    // thread had started, and the process hung.
    while (!server.is_running() && !listener_returned.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    server.stop();
  });

  Status loaded = load(s);
  std::unique_ptr<CheckpointFollower> follower;
  if (loaded.ok()) {
    const std::shared_ptr<const Served> served = s.served();
    s.ready.store(true);
    std::fprintf(stderr, "supercluster serve: ready: %s (step %lld), %zu slots of %zu positions%s\n",
                 served->model->checkpoint().c_str(), static_cast<long long>(served->model->step()), s.engine->slots(),
                 s.engine->context(), options.follow ? "; following the run for newer checkpoints" : "");
    if (options.follow) {
      follower = std::make_unique<CheckpointFollower>(
          std::filesystem::path(served->model->checkpoint()).parent_path().string(), served->model->step(),
          options.follow_poll_interval, [&s] { return !s.draining.load() && s.switching_to_step.load() < 0; },
          [&s](std::shared_ptr<const LoadedModel> next) { return switch_to(s, std::move(next)); });
    }
    // A signal that came while loading found no engine to stop.
    if (s.draining.load()) s.engine->shutdown();
  } else {
    done.store(true);
  }
  stopper.join();
  follower.reset();  // before the engine it switches goes
  listener.join();
  if (s.engine) s.engine->join();
  if (!loaded.ok()) return loaded;
  std::fprintf(stderr, "supercluster serve: stopped (%s), every request answered\n",
               g_stop_signal.load() == SIGINT ? "SIGINT" : "SIGTERM");
  return Status();
}

}  // namespace sc
