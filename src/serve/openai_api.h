// The OpenAI-compatible request and response bodies of the server
// (docs/serving.md): reading a completion or chat request's JSON into the
// engine's terms, with errors that name the field, and writing responses,
// stream chunks and error objects. No HTTP and no model here.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "serve/chat_template.h"
#include "serve/engine.h"
#include "serve/sampling.h"

namespace sc {

// Request bodies above this are refused before parsing.
inline constexpr size_t kMaxRequestBodyBytes = size_t{1} << 20;
// Generation length when a request gives no max_tokens (then capped to the context).
inline constexpr int64_t kDefaultMaxTokens = 256;

// An error as the API answers it: an HTTP status and OpenAI's error object.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending field, or empty
  std::string code;

  nlohmann::json to_json() const;  // {"error": {"message", "type", "param", "code"}}
};

// A 400 about the request, naming `param` (the field) when there is one.
ApiError bad_request(std::string message, std::string param = {}, std::string code = {});
// An error of the server's side (500, 503) or of access (401).
ApiError server_error(int status, std::string message, std::string code = {});

struct CompletionParams {
  bool chat = false;
  std::string prompt;                 // /v1/completions
  std::vector<ChatMessage> messages;  // /v1/chat/completions
  std::optional<int64_t> max_tokens;  // absent: kDefaultMaxTokens
  SamplingOptions sampling;           // max_tokens left to the caller, who knows the context
  std::optional<uint64_t> seed;       // absent: the caller draws one
  std::vector<std::string> stop;
  bool stream = false;
  bool ignore_eos = false;  // llama.cpp's: generate past the end-of-document token
};

// Reads a completion (`chat` false) or chat completion request body. Unknown
// fields are ignored, as OpenAI's clients send many.
std::optional<ApiError> parse_completion_request(std::string_view body, bool chat, CompletionParams* params);

// POST /tokenize {"content": TEXT} and POST /detokenize {"tokens": [ids]}
// (llama.cpp's server's endpoints); ids must be below `vocab_size`.
std::optional<ApiError> parse_tokenize_request(std::string_view body, std::string* content);
std::optional<ApiError> parse_detokenize_request(std::string_view body, uint32_t vocab_size,
                                                 std::vector<uint32_t>* tokens);

// What a response says about the request besides its text.
struct CompletionInfo {
  std::string id;     // "cmpl-N" / "chatcmpl-N"
  std::string model;  // the served model's id
  int64_t created = 0;
  bool chat = false;
};

// The whole response of a request that did not stream.
nlohmann::json completion_response(const CompletionInfo& info, const std::string& text, FinishReason finish,
                                   size_t prompt_tokens, size_t completion_tokens);
// One Server-Sent Events chunk: text so far unsent, and on the last chunk the
// finish reason and usage. Returns the "data: {...}\n\n" line.
std::string completion_chunk(const CompletionInfo& info, const std::string& text, FinishReason finish,
                             size_t prompt_tokens, size_t completion_tokens);
inline constexpr std::string_view kStreamDone = "data: [DONE]\n\n";

// JSON text for a response: invalid UTF-8 in generated text (a byte token
// cut a character) becomes U+FFFD rather than an exception.
std::string json_text(const nlohmann::json& value);

}  // namespace sc
