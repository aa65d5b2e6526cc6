#include "serve/openai_api.h"

#include <fmt/format.h>

#include "core/json_reader.h"

namespace sc {
namespace {

// The JsonReader's messages begin with its source; the API's name the field
// the client sent, so the source is "request".
constexpr const char* kSource = "request";

ApiError field_error(const Status& status, std::string param) {
  return bad_request(status.message(), std::move(param));
}

ApiError body_error(const Status& status) { return bad_request(status.message()); }

// Reads one optional field into *out; an error names it.
#define SC_API_READ(expr, out, field)                           \
  do {                                                          \
    auto _read = (expr);                                        \
    if (!_read.ok()) return field_error(_read.status(), field); \
    *(out) = std::move(_read).value();                          \
  } while (0)

std::optional<ApiError> read_stop(const JsonReader& r, std::vector<std::string>* stop) {
  if (!r.has("stop")) return std::nullopt;
  const nlohmann::json& field = r.json()["stop"];
  constexpr size_t kMaxStops = 16, kMaxStopBytes = 256;
  auto bad = [&] {
    return bad_request(fmt::format("{}: 'stop' must be a string or a list of at most {} strings of at most {} bytes",
                                   kSource, kMaxStops, kMaxStopBytes),
                       "stop");
  };
  if (field.is_string()) {
    if (field.get_ref<const std::string&>().size() > kMaxStopBytes) return bad();
    stop->push_back(field.get<std::string>());
    return std::nullopt;
  }
  if (!field.is_array() || field.size() > kMaxStops) return bad();
  for (const nlohmann::json& s : field) {
    if (!s.is_string() || s.get_ref<const std::string&>().size() > kMaxStopBytes) return bad();
    stop->push_back(s.get<std::string>());
  }
  return std::nullopt;
}

std::optional<ApiError> read_messages(const JsonReader& r, std::vector<ChatMessage>* messages) {
  auto array = r.array("messages");
  if (!array.ok()) return field_error(array.status(), "messages");
  if ((*array)->empty()) {
    return bad_request(fmt::format("{}: 'messages' must be a non-empty list", kSource), "messages");
  }
  for (size_t i = 0; i < (*array)->size(); ++i) {
    const std::string name = fmt::format("messages[{}]", i);
    auto message = JsonReader::of((**array)[i], fmt::format("{}: '{}'", kSource, name));
    if (!message.ok()) return field_error(message.status(), name);
    ChatMessage m;
    SC_API_READ(message->string("role", 32), &m.role, name + ".role");
    SC_API_READ(message->string("content", kMaxRequestBodyBytes), &m.content, name + ".content");
    messages->push_back(std::move(m));
  }
  return std::nullopt;
}

nlohmann::json usage(size_t prompt_tokens, size_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

nlohmann::json finish_json(FinishReason finish) {
  if (finish == FinishReason::kStop || finish == FinishReason::kLength) return finish_reason_name(finish);
  return nullptr;
}

}  // namespace

ApiError bad_request(std::string message, std::string param, std::string code) {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

ApiError server_error(int status, std::string message, std::string code) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = status == 401 ? "invalid_request_error" : "server_error";
  e.code = std::move(code);
  return e;
}

nlohmann::json ApiError::to_json() const {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
            {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)}}}};
}

std::optional<ApiError> parse_completion_request(std::string_view body, bool chat, CompletionParams* params) {
  auto parsed = parse_json(body, kSource);
  if (!parsed.ok()) return body_error(parsed.status());
  auto reader = JsonReader::of(*parsed, kSource);
  if (!reader.ok()) return body_error(reader.status());
  const JsonReader& r = *reader;
  CompletionParams p;
  p.chat = chat;
  if (chat) {
    if (auto error = read_messages(r, &p.messages)) return error;
  } else {
    SC_API_READ(r.string("prompt", kMaxRequestBodyBytes), &p.prompt, "prompt");
  }
  if (r.has("n")) {
    int64_t n = 0;
    SC_API_READ(r.integer("n"), &n, "n");
    if (n != 1) {
      return bad_request(fmt::format("{}: 'n' must be 1: one choice per request (got {})", kSource, n), "n");
    }
  }
  if (r.has("max_tokens")) {
    int64_t max_tokens = 0;
    SC_API_READ(r.integer("max_tokens", 0, int64_t{1} << 24), &max_tokens, "max_tokens");
    p.max_tokens = max_tokens;
  }
  p.sampling.temperature = 1.0;  // OpenAI's defaults
  p.sampling.top_p = 1.0;
  SC_API_READ(r.number_or("temperature", 1.0, 0.0, 100.0), &p.sampling.temperature, "temperature");
  if (p.sampling.temperature > 0 && p.sampling.temperature < 1e-3) p.sampling.temperature = 0;  // as good as greedy
  SC_API_READ(r.number_or("top_p", 1.0, 0.0, 1.0), &p.sampling.top_p, "top_p");
  if (p.sampling.top_p <= 0) {
    return bad_request(fmt::format("{}: 'top_p' must be a number in (0, 1] (got 0)", kSource), "top_p");
  }
  SC_API_READ(r.integer_or("top_k", 0, 0, int64_t{1} << 24), &p.sampling.top_k, "top_k");
  if (r.has("seed")) {
    uint64_t seed = 0;
    SC_API_READ(r.unsigned_integer("seed"), &seed, "seed");
    p.seed = seed;
  }
  SC_API_READ(r.boolean_or("stream", false), &p.stream, "stream");
  SC_API_READ(r.boolean_or("ignore_eos", false), &p.ignore_eos, "ignore_eos");
  if (auto error = read_stop(r, &p.stop)) return error;
  *params = std::move(p);
  return std::nullopt;
}

std::optional<ApiError> parse_tokenize_request(std::string_view body, std::string* content) {
  auto parsed = parse_json(body, kSource);
  if (!parsed.ok()) return body_error(parsed.status());
  auto reader = JsonReader::of(*parsed, kSource);
  if (!reader.ok()) return body_error(reader.status());
  SC_API_READ(reader->string("content", kMaxRequestBodyBytes), content, "content");
  return std::nullopt;
}

std::optional<ApiError> parse_detokenize_request(std::string_view body, uint32_t vocab_size,
                                                 std::vector<uint32_t>* tokens) {
  auto parsed = parse_json(body, kSource);
  if (!parsed.ok()) return body_error(parsed.status());
  auto reader = JsonReader::of(*parsed, kSource);
  if (!reader.ok()) return body_error(reader.status());
  auto array = reader->array("tokens");
  if (!array.ok()) return field_error(array.status(), "tokens");
  for (size_t i = 0; i < (*array)->size(); ++i) {
    const nlohmann::json& id = (**array)[i];
    if (!id.is_number_unsigned() || id.get<uint64_t>() >= vocab_size) {
      return bad_request(fmt::format("{}: 'tokens[{}]' must be a token id in [0, {}) (got {})", kSource, i, vocab_size,
                                     describe_json(id)),
                         "tokens");
    }
    tokens->push_back(static_cast<uint32_t>(id.get<uint64_t>()));
  }
  return std::nullopt;
}

nlohmann::json completion_response(const CompletionInfo& info, const std::string& text, FinishReason finish,
                                   size_t prompt_tokens, size_t completion_tokens) {
  nlohmann::json choice = {{"index", 0}, {"finish_reason", finish_json(finish)}};
  if (info.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
    choice["logprobs"] = nullptr;
  }
  return {{"id", info.id},
          {"object", info.chat ? "chat.completion" : "text_completion"},
          {"created", info.created},
          {"model", info.model},
          {"choices", nlohmann::json::array({choice})},
          {"usage", usage(prompt_tokens, completion_tokens)}};
}

std::string completion_chunk(const CompletionInfo& info, const std::string& text, FinishReason finish,
                             size_t prompt_tokens, size_t completion_tokens) {
  nlohmann::json choice = {{"index", 0}, {"finish_reason", finish_json(finish)}};
  if (info.chat) {
    choice["delta"] =
        text.empty() ? nlohmann::json::object() : nlohmann::json{{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
    choice["logprobs"] = nullptr;
  }
  nlohmann::json chunk = {{"id", info.id},
                          {"object", info.chat ? "chat.completion.chunk" : "text_completion"},
                          {"created", info.created},
                          {"model", info.model},
                          {"choices", nlohmann::json::array({choice})}};
  if (finish != FinishReason::kNone) chunk["usage"] = usage(prompt_tokens, completion_tokens);
  return "data: " + json_text(chunk) + "\n\n";
}

std::string json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace sc
