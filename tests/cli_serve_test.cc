// `supercluster serve` end to end: the real binary on a free port (--port 0,
// the port read from its "listening on" line) serving a tiny trained
// checkpoint, spoken to over HTTP with cpp-httplib's client. No test asserts
// a time; servers are killed when a test ends, however it ends.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "serve/http.h"
#include "test_util.h"
#include "train_cli_fixture.h"

namespace sc {
namespace {

using nlohmann::json;

// A `supercluster serve` process. Waits until /health says ready; SIGKILLs
// the process on destruction unless stop() already ended it.
class ServerProcess {
 public:
  // The test hooks' milliseconds (docs/serving.md): a pause after each
  // engine step, and --follow's time between looks for a new checkpoint.
  ServerProcess(const std::string& args, const std::string& log_path, int step_delay_ms = 0, int follow_poll_ms = 0)
      : log_path_(log_path) {
    ::signal(SIGPIPE, SIG_IGN);  // a test that hangs up on the server must not die writing to it
    // Everything the child needs is made before fork(): after it, only
    // async-signal-safe calls.
    const std::string command =
        (step_delay_ms > 0 ? "SUPERCLUSTER_SERVE_STEP_DELAY_MS=" + std::to_string(step_delay_ms) + " "
                           : std::string()) +
        (follow_poll_ms > 0 ? "SUPERCLUSTER_SERVE_FOLLOW_POLL_MS=" + std::to_string(follow_poll_ms) + " "
                            : std::string()) +
        "exec " + SUPERCLUSTER_BINARY + " serve --port 0 " + args;
    pid_ = ::fork();
    if (pid_ == 0) {
      const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // The port, once the server prints it; then readiness. Both bounded by
    // tries, not by a clock reading.
    const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
    for (int tries = 0; tries < 3000 && port_ == 0 && running(); ++tries) {
      std::smatch m;
      const std::string log = testing::read_text(log_path_);
      if (std::regex_search(log, m, listening))
        port_ = std::stoi(m[1]);
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (port_ == 0) return;
    for (int tries = 0; tries < 3000 && running(); ++tries) {
      auto health = client().Get("/health");
      if (health && health->status == 200) {
        ready_ = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~ServerProcess() {
    if (pid_ > 0 && exit_code_ < 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool ready() const { return ready_; }
  std::string log() const { return testing::read_text(log_path_); }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }
  void signal(int signal) { ::kill(pid_, signal); }
  // SIGTERM, then the exit code.
  int stop() {
    signal(SIGTERM);
    return wait();
  }
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }

 private:
  bool running() {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    return true;
  }
  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
  bool ready_ = false;
};

json post_json(const ServerProcess& server, const std::string& path, const json& body, int* status = nullptr,
               const httplib::Headers& headers = {}) {
  auto res = server.client().Post(path.c_str(), headers, body.dump(), "application/json");
  if (!res) {
    ADD_FAILURE() << "no response from " << path;
    return {};
  }
  if (status) *status = res->status;
  if (!status) {
    EXPECT_EQ(res->status, 200) << res->body;
  }
  return json::parse(res->body, nullptr, false);
}

// The "data: " payloads of a Server-Sent Events body, in order.
std::vector<std::string> events(const std::string& body) {
  std::vector<std::string> out;
  for (size_t pos = 0; (pos = body.find("data: ", pos)) != std::string::npos;) {
    const size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

// A completion's text, streamed and joined, and its last chunk.
std::string streamed_text(const ServerProcess& server, const std::string& path, json body, json* last = nullptr) {
  body["stream"] = true;
  auto res = server.client().Post(path.c_str(), body.dump(), "application/json");
  if (!res) {
    ADD_FAILURE() << "no response";
    return {};
  }
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const std::vector<std::string> data = events(res->body);
  EXPECT_GE(data.size(), 2u) << res->body;
  if (data.empty()) return {};
  EXPECT_EQ(data.back(), "[DONE]") << res->body;
  std::string text;
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    const json chunk = json::parse(data[i]);
    const json& choice = chunk["choices"][0];
    if (choice.contains("text")) text += choice["text"].get<std::string>();
    if (choice.contains("delta") && choice["delta"].contains("content"))
      text += choice["delta"]["content"].get<std::string>();
    const bool is_last = i + 2 == data.size();
    EXPECT_EQ(choice["finish_reason"].is_null(), !is_last) << data[i];
    if (is_last && last) *last = chunk;
  }
  return text;
}

// Text as JSON shows it: invalid UTF-8 replaced, as the server writes it.
std::string as_json(const std::string& text) { return json(text).dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t metric(const ServerProcess& server, const std::string& name) {
  auto res = server.client().Get("/metrics");
  if (!res) return -1;
  const std::string line = "\n" + name + " ";
  const size_t at = res->body.find(line);
  return at == std::string::npos ? -1 : std::stoll(res->body.substr(at + line.size()));
}

// Polls /metrics until `name` reaches `value`; false if it never does
// within a bounded number of tries.
bool await_metric(const ServerProcess& server, const std::string& name, int64_t value) {
  for (int tries = 0; tries < 2000; ++tries) {
    if (metric(server, name) == value) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

class ServeCli : public TrainCli {
 protected:
  static void SetUpTestSuite() {
    TrainCli::SetUpTestSuite();
    train("run", "--steps 10");
  }
  static std::string run_dir() { return dir_->file("run"); }
  static std::string log(const std::string& name) { return dir_->file(name + ".log"); }
};

json completion(const std::string& prompt, int max_tokens, uint64_t seed, double temperature = 0.8) {
  return {
      {"prompt", prompt}, {"max_tokens", max_tokens}, {"seed", seed}, {"temperature", temperature}, {"top_p", 0.95}};
}

TEST_F(ServeCli, HealthModelsTokenizeMetricsAndThePage) {
  ServerProcess server("--checkpoint " + run_dir() + " --slots 2 --threads 1", log("basic"));
  ASSERT_TRUE(server.ready()) << server.log();
  auto health = server.client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["step"], 10);

  auto models = server.client().Get("/v1/models");
  ASSERT_TRUE(models);
  const json m = json::parse(models->body);
  EXPECT_EQ(m["object"], "list");
  EXPECT_EQ(m["data"][0]["id"], "run");
  EXPECT_EQ(m["data"][0]["step"], 10);

  const json tokens = post_json(server, "/tokenize", {{"content", "Der schnelle Fuchs"}});
  ASSERT_TRUE(tokens["tokens"].is_array());
  EXPECT_FALSE(tokens["tokens"].empty());
  EXPECT_EQ(post_json(server, "/detokenize", {{"tokens", tokens["tokens"]}})["content"], "Der schnelle Fuchs");

  json five_tokens = completion("Der", 5, 1);
  five_tokens["ignore_eos"] = true;
  post_json(server, "/v1/completions", five_tokens);
  auto metrics = server.client().Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const char* name :
       {"supercluster_requests_total{status=\"200\"}", "supercluster_prompt_tokens_total",
        "supercluster_generated_tokens_total", "supercluster_queue_length", "supercluster_active_slots 0",
        "# TYPE supercluster_requests_total counter", "supercluster_tokens_per_second",
        "supercluster_time_to_first_token_seconds_bucket{le=\"+Inf\"} 1",
        "supercluster_time_per_output_token_seconds_count 4"}) {
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name << "\n" << metrics->body;
  }
  EXPECT_EQ(metric(server, "supercluster_slots"), 2);

  auto page = server.client().Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<html"), std::string::npos);
  EXPECT_NE(page->body.find("/v1/chat/completions"), std::string::npos);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST_F(ServeCli, CompletionsMatchGenerateForTheSameSeedAndGreedily) {
  ServerProcess server("--checkpoint " + run_dir() + " --slots 2 --threads 1", log("generate"));
  ASSERT_TRUE(server.ready()) << server.log();
  for (const auto& [temperature, seed] : {std::pair{0.8, 5}, {0.0, 0}}) {
    const json a = post_json(server, "/v1/completions", completion("Der", 12, seed, temperature));
    const json b = post_json(server, "/v1/completions", completion("Der", 12, seed, temperature));
    EXPECT_EQ(a["choices"][0]["text"], b["choices"][0]["text"]);
    EXPECT_EQ(a["object"], "text_completion");
    const std::string text = a["choices"][0]["text"];
    // `generate` prints the prompt, the continuation and a newline.
    auto generated = testing::run_command(
        fmt::format("({} generate --checkpoint {} --prompt Der --max-tokens 12 --seed {} --temperature {} --top-p 0.95 "
                    "--threads 1 2>/dev/null)",
                    SUPERCLUSTER_BINARY, run_dir(), seed, temperature));
    ASSERT_EQ(generated.exit_code, 0) << generated.output;
    // The server's JSON carries a byte token that cuts a character as U+FFFD.
    EXPECT_EQ(as_json("Der" + text + "\n"), as_json(generated.output)) << "temperature " << temperature;

    const json prompt_ids = post_json(server, "/tokenize", {{"content", "Der"}});
    const json& usage = a["usage"];
    EXPECT_EQ(usage["prompt_tokens"], prompt_ids["tokens"].size() + 1)
        << "the prompt follows the end-of-document token";
    EXPECT_EQ(usage["total_tokens"], usage["prompt_tokens"].get<int>() + usage["completion_tokens"].get<int>());
    EXPECT_EQ(a["choices"][0]["finish_reason"], usage["completion_tokens"] == 12 ? "length" : "stop");
    // Streamed, the same text in chunks.
    json last;
    EXPECT_EQ(streamed_text(server, "/v1/completions", completion("Der", 12, seed, temperature), &last), text);
    EXPECT_EQ(last["usage"], usage);
  }
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// --weights bf16 / int8: the server decodes with the packed matrices, as
// `generate --weights` does (the same text, greedily and for a seed).
TEST_F(ServeCli, PackedWeightsServeWhatGenerateDecodes) {
  for (const char* weights : {"bf16", "int8"}) {
    ServerProcess server(fmt::format("--checkpoint {} --slots 2 --threads 1 --weights {}", run_dir(), weights),
                         log(std::string("weights-") + weights));
    ASSERT_TRUE(server.ready()) << server.log();
    for (const auto& [temperature, seed] : {std::pair{0.0, 0}, {0.8, 5}}) {
      const std::string text =
          post_json(server, "/v1/completions", completion("Der", 12, seed, temperature))["choices"][0]["text"];
      auto generated = testing::run_command(
          fmt::format("({} generate --checkpoint {} --prompt Der --max-tokens 12 --seed {} --temperature {} "
                      "--top-p 0.95 --threads 1 --weights {} 2>/dev/null)",
                      SUPERCLUSTER_BINARY, run_dir(), seed, temperature, weights));
      ASSERT_EQ(generated.exit_code, 0) << generated.output;
      EXPECT_EQ(as_json("Der" + text + "\n"), as_json(generated.output)) << weights << " temperature " << temperature;
    }
    EXPECT_EQ(server.stop(), 0) << server.log();
  }
  auto bad = testing::run_command(fmt::format("{} serve --checkpoint {} --weights q4 2>&1", SUPERCLUSTER_BINARY, run_dir()));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("--weights must be fp32, bf16 or int8 (got 'q4')"), std::string::npos) << bad.output;
}

TEST_F(ServeCli, ChatStopStringsAndMaxTokens) {
  ServerProcess server("--checkpoint " + run_dir() + " --slots 2 --threads 1", log("chat"));
  ASSERT_TRUE(server.ready()) << server.log();
  const json chat = {
      {"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Der"}}}},
      {"max_tokens", 10},
      {"seed", 3}};
  const json reply = post_json(server, "/v1/chat/completions", chat);
  EXPECT_EQ(reply["object"], "chat.completion");
  EXPECT_EQ(reply["choices"][0]["message"]["role"], "assistant");
  const std::string content = reply["choices"][0]["message"]["content"];
  EXPECT_EQ(streamed_text(server, "/v1/chat/completions", chat), content);
  // The template's text is the prompt: the usage counts it.
  const json templated = post_json(server, "/tokenize", {{"content", "System: Be brief.\nUser: Der\nAssistant:"}});
  EXPECT_EQ(reply["usage"]["prompt_tokens"], templated["tokens"].size() + 1);

  // A stop string ends the text just before it, streamed or not.
  json long_request = completion("La volpe", 40, 11, 1.0);
  long_request["ignore_eos"] = true;
  const std::string full = post_json(server, "/v1/completions", long_request)["choices"][0]["text"];
  ASSERT_GE(full.size(), 12u) << full;
  // Three ASCII bytes from the middle (a cut character would not be JSON).
  size_t at = 6;
  while (at + 3 < full.size() && !(isascii(full[at]) && isascii(full[at + 1]) && isascii(full[at + 2]))) ++at;
  ASSERT_LT(at + 3, full.size()) << full;
  const std::string stop = full.substr(at, 3);
  for (const json& stops : {json(stop), json::array({"no such text", stop})}) {
    json stopped = long_request;
    stopped["stop"] = stops;
    const json r = post_json(server, "/v1/completions", stopped);
    EXPECT_EQ(r["choices"][0]["text"], full.substr(0, full.find(stop)));
    EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(streamed_text(server, "/v1/completions", stopped), full.substr(0, full.find(stop)));
  }
  // max_tokens beyond the context is capped: generation ends at the context.
  json too_many = long_request;
  too_many["max_tokens"] = 100000;
  const json capped = post_json(server, "/v1/completions", too_many);
  EXPECT_EQ(capped["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(capped["usage"]["total_tokens"], 64 + 1) << "every position of the context, and the last token sampled";
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST_F(ServeCli, ConcurrentClientsEachGetTheAnswerTheyGetAlone) {
  // A pause per step keeps the requests in the batch together.
  ServerProcess server("--checkpoint " + run_dir() + " --slots 4 --threads 1", log("concurrent"), 2);
  ASSERT_TRUE(server.ready()) << server.log();
  // Eight clients over four slots: some wait in the queue, and requests
  // join and leave the batch at different tokens.
  const std::vector<std::string> prompts = {"Der",       "La volpe", "The quick", "Grüße",
                                            "A journey", "Città",    "Straße",    "नमस्ते"};
  std::vector<json> requests;
  std::vector<std::string> alone;
  for (size_t i = 0; i < prompts.size(); ++i) {
    requests.push_back(completion(prompts[i], 20 + static_cast<int>(i), 100 + i, 1.0));
    requests.back()["ignore_eos"] = true;
    alone.push_back(post_json(server, "/v1/completions", requests.back())["choices"][0]["text"]);
  }
  std::vector<std::string> together(prompts.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i) {
    clients.emplace_back([&, i] {
      together[i] = i % 2 ? streamed_text(server, "/v1/completions", requests[i])
                          : post_json(server, "/v1/completions", requests[i])["choices"][0]["text"].get<std::string>();
    });
  }
  for (auto& c : clients) c.join();
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(together[i], alone[i]) << prompts[i];
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST_F(ServeCli, ADisconnectMidStreamFreesTheSlotAndAFullQueueIs503) {
  ServerProcess server("--checkpoint " + run_dir() + " --slots 1 --max-queue 1 --threads 1", log("queue"), 20);
  ASSERT_TRUE(server.ready()) << server.log();
  json endless = completion("Der", 60, 1, 1.0);
  endless["ignore_eos"] = true;
  endless["stream"] = true;
  // The client reads one chunk and hangs up.
  {
    httplib::Client client = server.client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = endless.dump();
    req.set_header("Content-Type", "application/json");
    int chunks = 0;
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 2; };
    httplib::Response res;
    httplib::Error error;
    client.send(req, res, error);
    EXPECT_GE(chunks, 1);
  }
  EXPECT_TRUE(await_metric(server, "supercluster_requests_cancelled_total", 1)) << server.log();
  EXPECT_TRUE(await_metric(server, "supercluster_active_slots", 0));

  // The one slot is free again: one request runs, one waits, the next is refused.
  json running = endless;
  running.erase("stream");
  std::thread first([&] { post_json(server, "/v1/completions", running); });
  ASSERT_TRUE(await_metric(server, "supercluster_active_slots", 1));
  std::thread second([&] { post_json(server, "/v1/completions", running); });
  ASSERT_TRUE(await_metric(server, "supercluster_queue_length", 1));
  const std::string refusals = "supercluster_requests_total{status=\"503\"}";
  const int64_t refused_before = std::max<int64_t>(0, metric(server, refusals));  // /health while loading
  auto refused = server.client().Post("/v1/completions", running.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_TRUE(json::parse(refused->body)["error"]["message"].is_string());
  first.join();
  second.join();
  EXPECT_EQ(metric(server, refusals), refused_before + 1);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST_F(ServeCli, BadRequestsAre400WithAnErrorObjectNamingTheField) {
  ServerProcess server("--checkpoint " + run_dir() + " --threads 1", log("bad"));
  ASSERT_TRUE(server.ready()) << server.log();
  struct Case {
    std::string body, param, mentions;
  };
  const std::vector<Case> cases = {
      {"{\"prompt\": \"Der\", ", "", "request"},
      {"[1, 2]", "", "object"},
      {R"({"max_tokens": 4})", "prompt", "'prompt'"},
      {R"({"prompt": 7})", "prompt", "'prompt'"},
      {R"({"prompt": "Der", "max_tokens": "many"})", "max_tokens", "'max_tokens'"},
      {R"({"prompt": "Der", "temperature": -1})", "temperature", "'temperature'"},
      {R"({"prompt": "Der", "stream": "yes"})", "stream", "'stream'"},
      {R"({"prompt": "Der", "stop": [1]})", "stop", "'stop'"},
      {R"({"prompt": "Der", "n": 2})", "n", "'n'"},
      {R"({"prompt": "Der", "seed": -3})", "seed", "'seed'"},
      {std::string(200, '[') + std::string(200, ']'), "", "nest"},
      {"{\"prompt\": \"Gr\xFC\xDF"
       "e\"}",
       "", "request"},                                             // Latin-1, not UTF-8
      {"{\"prompt\": \"Der\", \"max_tokens\": 4", "", "request"},  // truncated
  };
  for (const Case& c : cases) {
    auto res = server.client().Post("/v1/completions", c.body, "application/json");
    ASSERT_TRUE(res) << c.body;
    EXPECT_EQ(res->status, 400) << c.body;
    const json error = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(error.contains("error")) << res->body;
    EXPECT_EQ(error["error"]["type"], "invalid_request_error");
    EXPECT_NE(error["error"]["message"].get<std::string>().find(c.mentions), std::string::npos) << res->body;
    if (!c.param.empty()) {
      EXPECT_EQ(error["error"]["param"], c.param) << res->body;
    }
  }
  int status = 0;
  json e = post_json(server, "/v1/chat/completions", {{"messages", {{{"role", "user"}}}}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(e["error"]["param"], "messages[0].content");
  e = post_json(server, "/v1/chat/completions", {{"messages", {{{"role", "robot"}, {"content", "x"}}}}}, &status);
  EXPECT_EQ(status, 400);
  e = post_json(server, "/detokenize", {{"tokens", {1, 100000}}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(e["error"]["param"], "tokens");

  // A prompt longer than the context: both lengths named.
  std::string long_prompt;
  for (int i = 0; i < 40; ++i) long_prompt += "Der schnelle braune Fuchs ";
  e = post_json(server, "/v1/completions", {{"prompt", long_prompt}}, &status);
  EXPECT_EQ(status, 400);
  const std::string message = e["error"]["message"];
  EXPECT_NE(message.find("the context is 64"), std::string::npos) << message;
  EXPECT_NE(message.find("tokens"), std::string::npos) << message;

  // A body over the limit is refused before it is parsed.
  auto huge = server.client().Post("/v1/completions", std::string(2 << 20, 'x'), "application/json");
  ASSERT_TRUE(huge);
  EXPECT_TRUE(huge->status == 413 || huge->status == 400) << huge->status;
  auto missing = server.client().Get("/v1/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(json::parse(missing->body, nullptr, false).contains("error"));
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST_F(ServeCli, AnApiKeyIsRequiredWhenSet) {
  ServerProcess server("--checkpoint " + run_dir() + " --threads 1 --api-key s3cret", log("key"));
  ASSERT_TRUE(server.ready()) << server.log();
  const json body = completion("Der", 3, 1);
  int status = 0;
  json e = post_json(server, "/v1/completions", body, &status);
  EXPECT_EQ(status, 401);
  EXPECT_EQ(e["error"]["code"], "invalid_api_key");
  post_json(server, "/v1/completions", body, &status, {{"Authorization", "Bearer s3cres"}});
  EXPECT_EQ(status, 401);
  post_json(server, "/v1/completions", body, &status, {{"Authorization", "Bearer s3cret-and-more"}});
  EXPECT_EQ(status, 401);
  post_json(server, "/v1/completions", body, &status, {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(status, 200);
  auto health = server.client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << "health checks need no key";
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST_F(ServeCli, SigtermFinishesTheRequestInFlightRefusesNewOnesThenExitsZero) {
  ServerProcess server("--checkpoint " + run_dir() + " --slots 1 --threads 1", log("drain"), 20);
  ASSERT_TRUE(server.ready()) << server.log();
  json request = completion("Der", 60, 4, 1.0);
  request["ignore_eos"] = true;
  json last;
  std::string text;
  std::thread client([&] { text = streamed_text(server, "/v1/completions", request, &last); });
  ASSERT_TRUE(await_metric(server, "supercluster_active_slots", 1));
  server.signal(SIGTERM);
  // Draining: /health says so, and a new request is refused, while the one
  // in flight (60 steps of 20 ms) runs on.
  int health = 0;
  for (int tries = 0; tries < 2000 && health != 503; ++tries) {
    auto res = server.client().Get("/health");
    health = res ? res->status : -1;
    if (health != 503) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(health, 503);
  int status = 0;
  const json refused = post_json(server, "/v1/completions", completion("Der", 3, 1), &status);
  EXPECT_EQ(status, 503);
  EXPECT_NE(refused["error"]["message"].get<std::string>().find("shutting down"), std::string::npos) << refused;
  EXPECT_EQ(server.wait(), 0) << server.log();
  client.join();
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length") << "the request in flight ran to its end";
  EXPECT_EQ(last["usage"]["completion_tokens"], 60);
  EXPECT_NE(server.log().find("stopped (SIGTERM)"), std::string::npos) << server.log();
}

TEST_F(ServeCli, AMissingCheckpointIsAClearErrorAndBadFlagsAreRefused) {
  auto r = testing::run_supercluster("serve --port 0 --checkpoint " + dir_->file("no_such_run"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no_such_run"), std::string::npos) << r.output;
  for (const char* flags : {"--slots 0", "--port 70000", "--max-queue -1", "--ctx x", "--threads 999"}) {
    auto refused = testing::run_supercluster(std::string("serve --checkpoint x ") + flags);
    EXPECT_NE(refused.exit_code, 0) << flags;
  }
}

// --follow: a server on a run that goes on training. The base run stops at
// step 10 of a 20-step schedule; `more` is the same run resumed to step 20
// (checkpoints 15 and 20, bit-identical to what the base would commit), and
// `wide` a model of another shape on the same data.
class ServeFollowCli : public TrainCli {
 protected:
  static void SetUpTestSuite() {
    TrainCli::SetUpTestSuite();
    train("base", "--steps 20 --stop-at-step 10");
    copy_run("base", "more");
    auto resumed = testing::run_supercluster("train --resume --out " + dir_->file("more"));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    std::string wide = kTinyConfig;
    const std::string ffn = "\"intermediate_size\": 64";
    wide.replace(wide.find(ffn), ffn.size(), "\"intermediate_size\": 96");
    testing::write_text(dir_->file("wide.json"), wide);
    auto trained =
        testing::run_supercluster(fmt::format("train --config {} --data {} --out {} --steps 1", dir_->file("wide.json"),
                                              dir_->file("data"), dir_->file("wide")));
    ASSERT_EQ(trained.exit_code, 0) << trained.output;
  }
  static void copy_run(const std::string& from, const std::string& to) {
    std::filesystem::copy(dir_->file(from), dir_->file(to), std::filesystem::copy_options::recursive);
  }
  static std::string checkpoint(const std::string& run, int64_t step) {
    return fmt::format("{}/checkpoints/step_{:08d}", dir_->file(run), step);
  }
  // Puts a copy of `from` into `run`'s checkpoints/ as step `step` the way
  // training commits one: complete under a hidden name, then one rename.
  // `damage` may spoil the copy first.
  static void commit_copy(const std::string& from, const std::string& run, int64_t step,
                          const std::function<void(const std::string& dir)>& damage = {}) {
    const std::string hidden = fmt::format("{}/checkpoints/.step_{:08d}.tmp", dir_->file(run), step);
    std::filesystem::copy(from, hidden, std::filesystem::copy_options::recursive);
    if (damage) damage(hidden);
    std::filesystem::rename(hidden, checkpoint(run, step));
  }
  // The flags of a server following `run`.
  static std::string follow(const std::string& run) { return "--follow --threads 1 --checkpoint " + dir_->file(run); }
  static std::string log(const std::string& name) { return dir_->file(name + ".log"); }
};

// The server's environment for these tests: a look for new checkpoints every
// 20 ms rather than every second.
constexpr int kPollMs = 20;

// Polls /health until `wanted` holds of its body; false if it never does
// within a bounded number of tries.
bool await_health(const ServerProcess& server, const std::function<bool(const json&)>& wanted) {
  for (int tries = 0; tries < 6000; ++tries) {
    auto res = server.client().Get("/health");
    if (res && res->status == 200 && wanted(json::parse(res->body, nullptr, false))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

bool await_log(const ServerProcess& server, const std::string& text) {
  for (int tries = 0; tries < 6000 && server.log().find(text) == std::string::npos; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return server.log().find(text) != std::string::npos;
}

size_t occurrences(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

TEST_F(ServeFollowCli, SwitchesToEachCheckpointTheRunCommitsWhileItTrains) {
  copy_run("base", "training");
  // In bf16: a switch builds the new model in the served format, as the
  // first load did (the engine refuses a model in another).
  ServerProcess server(follow("training") + " --weights bf16", log("follow_training"), 0, kPollMs);
  ASSERT_TRUE(server.ready()) << server.log();
  auto health = server.client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(json::parse(health->body)["step"], 10);
  EXPECT_EQ(json::parse(health->body)["follow"], true);
  const json greedy = completion("Der", 16, 0, 0.0);
  json sampled = completion("La volpe", 24, 7, 1.0);
  sampled["ignore_eos"] = true;
  const json sampled_at_10 = post_json(server, "/v1/completions", sampled)["choices"][0]["text"];

  // Training goes on in the served run: checkpoints 15 and 20 are committed
  // (and, keeping three, step 5 removed) while the server runs.
  auto resumed = testing::run_supercluster("train --resume --out " + dir_->file("training"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  ASSERT_TRUE(await_health(server, [](const json& h) { return h["step"] == 20; })) << server.log();
  health = server.client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(json::parse(health->body)["checkpoint"], checkpoint("training", 20));
  EXPECT_FALSE(json::parse(health->body).contains("switching_to_step")) << health->body;
  auto models = server.client().Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["step"], 20);
  EXPECT_EQ(json::parse(models->body)["data"][0]["checkpoint"], checkpoint("training", 20));
  EXPECT_EQ(metric(server, "supercluster_checkpoint_step"), 20);
  EXPECT_GE(metric(server, "supercluster_checkpoint_switches_total"), 1) << "to 20, maybe by way of 15";
  EXPECT_NE(server.log().find("serving step 20 from " + checkpoint("training", 20) + ", was step "), std::string::npos)
      << server.log();

  // The weights switched: the answers are those of a server started on step 20.
  const json greedy_at_20 = post_json(server, "/v1/completions", greedy)["choices"][0]["text"];
  const json sampled_at_20 = post_json(server, "/v1/completions", sampled)["choices"][0]["text"];
  EXPECT_NE(sampled_at_20, sampled_at_10) << "ten more steps of training change a sampled text";
  ServerProcess direct("--threads 1 --weights bf16 --checkpoint " + checkpoint("training", 20), log("follow_direct"));
  ASSERT_TRUE(direct.ready()) << direct.log();
  EXPECT_EQ(post_json(direct, "/v1/completions", greedy)["choices"][0]["text"], greedy_at_20);
  EXPECT_EQ(post_json(direct, "/v1/completions", sampled)["choices"][0]["text"], sampled_at_20);
  EXPECT_EQ(direct.stop(), 0) << direct.log();
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST_F(ServeFollowCli, ARequestInFlightFinishesOnTheOldModelAndTheSwitchComesAfterIt) {
  copy_run("base", "in_flight");
  // 40 ms a step: a request of 50 tokens is in its slot for two seconds,
  // while the follower (20 ms a look) finds and loads the new checkpoint.
  ServerProcess server(follow("in_flight") + " --slots 2", log("follow_in_flight"), 40, kPollMs);
  ASSERT_TRUE(server.ready()) << server.log();
  json request = completion("Der", 50, 3, 1.0);
  request["ignore_eos"] = true;
  const std::string at_10 = post_json(server, "/v1/completions", request)["choices"][0]["text"];

  json last;
  std::string in_flight;
  std::thread streaming([&] { in_flight = streamed_text(server, "/v1/completions", request, &last); });
  ASSERT_TRUE(await_metric(server, "supercluster_active_slots", 1));
  commit_copy(checkpoint("more", 20), "in_flight", 20);
  // Loaded, and waiting for the request generating: a free slot takes no new
  // request meanwhile, so one sent now waits and runs on step 20.
  ASSERT_TRUE(await_health(server, [](const json& h) { return h.value("switching_to_step", 0) == 20; }))
      << server.log();
  std::string queued;
  std::thread waiting([&] { queued = post_json(server, "/v1/completions", request)["choices"][0]["text"]; });
  streaming.join();
  waiting.join();
  EXPECT_EQ(in_flight, at_10) << "every token of the request in flight came from step 10";
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(last["usage"]["completion_tokens"], 50);
  ASSERT_TRUE(await_health(server, [](const json& h) { return h["step"] == 20; })) << server.log();
  EXPECT_NE(queued, at_10) << "the request that waited ran on step 20";
  EXPECT_EQ(post_json(server, "/v1/completions", request)["choices"][0]["text"], queued);
  EXPECT_EQ(metric(server, "supercluster_checkpoint_switches_total"), 1);
  const std::string output = server.log();
  EXPECT_LT(output.find("loaded step 20"), output.find("serving step 20")) << output;
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST_F(ServeFollowCli, ABadNewerCheckpointIsNamedOnceAndTheServedOneStays) {
  copy_run("base", "bad");
  ServerProcess server(follow("bad"), log("follow_bad"), 0, kPollMs);
  ASSERT_TRUE(server.ready()) << server.log();
  const json request = completion("Der", 12, 5, 1.0);
  const std::string at_10 = post_json(server, "/v1/completions", request)["choices"][0]["text"];

  // Committed, but its weights cut short after the manifest was written.
  commit_copy(checkpoint("more", 20), "bad", 20,
              [](const std::string& dir) { std::filesystem::resize_file(dir + "/model.safetensors", 1000); });
  ASSERT_TRUE(await_log(server, "not switching to " + checkpoint("bad", 20))) << server.log();
  // A model of another shape.
  commit_copy(checkpoint("wide", 1), "bad", 30);
  ASSERT_TRUE(await_log(server, "not switching to " + checkpoint("bad", 30))) << server.log();
  auto health = server.client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["step"], 10);
  EXPECT_EQ(post_json(server, "/v1/completions", request)["choices"][0]["text"], at_10);

  // A good one newer than the served step is still taken, the bad ones
  // (newer still) are not tried again.
  commit_copy(checkpoint("more", 15), "bad", 15);
  ASSERT_TRUE(await_health(server, [](const json& h) { return h["step"] == 15; })) << server.log();
  const std::string output = server.log();
  const std::string bad_weights = "not switching to " + checkpoint("bad", 20) + ": ";
  EXPECT_EQ(occurrences(output, bad_weights), 1u) << output;
  EXPECT_NE(output.find(checkpoint("bad", 20) + "/model.safetensors: 1000 bytes, manifest says"), std::string::npos)
      << output;
  EXPECT_EQ(occurrences(output, "not switching to " + checkpoint("bad", 30) + ": "), 1u) << output;
  EXPECT_NE(output.find("differs from the served model's in intermediate_size"), std::string::npos) << output;
  EXPECT_EQ(metric(server, "supercluster_checkpoint_switches_total"), 1);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST_F(ServeFollowCli, FollowingOneCheckpointIsRefusedBeforeAnythingLoads) {
  // By its name, even when it does not exist: the flag check runs first.
  for (const std::string& path : {checkpoint("base", 10), dir_->file("nowhere/checkpoints/step_00000010/")}) {
    auto r = testing::run_supercluster("serve --port 0 --follow --checkpoint " + path);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("--follow watches a run for new checkpoints"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("listening on"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace sc
