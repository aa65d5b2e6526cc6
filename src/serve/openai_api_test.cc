#include "serve/openai_api.h"

#include <gtest/gtest.h>

namespace sc {
namespace {

std::optional<ApiError> parse(const std::string& body, bool chat, CompletionParams* p) {
  return parse_completion_request(body, chat, p);
}

TEST(OpenAiApi, ReadsACompletionRequestWithOpenAisDefaults) {
  CompletionParams p;
  ASSERT_FALSE(parse(R"({"prompt": "Hi", "model": "x", "user": "u"})", false, &p));
  EXPECT_EQ(p.prompt, "Hi");
  EXPECT_FALSE(p.max_tokens.has_value());
  EXPECT_EQ(p.sampling.temperature, 1.0);
  EXPECT_EQ(p.sampling.top_p, 1.0);
  EXPECT_FALSE(p.seed.has_value());
  EXPECT_FALSE(p.stream);
  ASSERT_FALSE(parse(R"({"prompt": "Hi", "max_tokens": 7, "temperature": 0, "top_p": 0.5, "top_k": 3,
                          "seed": 18446744073709551615, "stream": true, "stop": ["a", "b"], "n": 1})",
                     false, &p));
  EXPECT_EQ(*p.max_tokens, 7);
  EXPECT_EQ(p.sampling.temperature, 0.0);
  EXPECT_EQ(p.sampling.top_k, 3);
  EXPECT_EQ(*p.seed, UINT64_MAX);
  EXPECT_TRUE(p.stream);
  EXPECT_EQ(p.stop, (std::vector<std::string>{"a", "b"}));
}

TEST(OpenAiApi, ReadsChatMessages) {
  CompletionParams p;
  ASSERT_FALSE(parse(R"({"messages": [{"role": "user", "content": "Hi"}], "stop": "x"})", true, &p));
  ASSERT_EQ(p.messages.size(), 1u);
  EXPECT_EQ(p.messages[0].role, "user");
  EXPECT_EQ(p.stop, std::vector<std::string>{"x"});
}

TEST(OpenAiApi, ErrorsNameTheField) {
  CompletionParams p;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"prompt": 1})", "prompt"},
      {R"({})", "prompt"},
      {R"({"prompt": "a", "max_tokens": -1})", "max_tokens"},
      {R"({"prompt": "a", "top_p": 0})", "top_p"},
      {R"({"prompt": "a", "n": 3})", "n"},
      {R"({"prompt": "a", "stop": {"x": 1}})", "stop"},
      {R"({"prompt": "a", "temperature": "hot"})", "temperature"},
  };
  for (const auto& [body, param] : cases) {
    auto error = parse(body, false, &p);
    ASSERT_TRUE(error) << body;
    EXPECT_EQ(error->status, 400);
    EXPECT_EQ(error->param, param) << body;
    EXPECT_NE(error->message.find("'" + param + "'"), std::string::npos) << error->message;
  }
  auto chat = parse(R"({"messages": [{"role": "user", "content": 5}]})", true, &p);
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->param, "messages[0].content");
  EXPECT_TRUE(parse(R"({"messages": []})", true, &p));
  EXPECT_TRUE(parse("not json", false, &p));
  EXPECT_TRUE(parse(std::string(100, '['), false, &p));
}

TEST(OpenAiApi, ErrorObjectsAndChunksHaveOpenAisShape) {
  const nlohmann::json e = bad_request("m", "p").to_json();
  EXPECT_EQ(e["error"]["message"], "m");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["param"], "p");
  EXPECT_TRUE(e["error"]["code"].is_null());
  const CompletionInfo chat{.id = "chatcmpl-1", .model = "m", .created = 1, .chat = true};
  const std::string chunk = completion_chunk(chat, "hi", FinishReason::kNone, 3, 1);
  ASSERT_EQ(chunk.rfind("data: ", 0), 0u);
  const nlohmann::json j = nlohmann::json::parse(chunk.substr(6));
  EXPECT_EQ(j["object"], "chat.completion.chunk");
  EXPECT_EQ(j["choices"][0]["delta"]["content"], "hi");
  EXPECT_FALSE(j.contains("usage"));
  const nlohmann::json last = nlohmann::json::parse(completion_chunk(chat, "", FinishReason::kLength, 3, 2).substr(6));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(last["usage"]["total_tokens"], 5);
  // A byte token may cut a character: the JSON stays valid.
  EXPECT_NO_THROW(json_text(nlohmann::json(std::string("\xC3"))));
}

TEST(OpenAiApi, DetokenizeChecksIds) {
  std::vector<uint32_t> ids;
  EXPECT_FALSE(parse_detokenize_request(R"({"tokens": [0, 5]})", 10, &ids));
  EXPECT_EQ(ids, (std::vector<uint32_t>{0, 5}));
  EXPECT_TRUE(parse_detokenize_request(R"({"tokens": [10]})", 10, &ids));
  EXPECT_TRUE(parse_detokenize_request(R"({"tokens": [-1]})", 10, &ids));
  EXPECT_TRUE(parse_detokenize_request(R"({"tokens": "1"})", 10, &ids));
  std::string content;
  EXPECT_FALSE(parse_tokenize_request(R"({"content": "x"})", &content));
  EXPECT_TRUE(parse_tokenize_request(R"({"text": "x"})", &content));
}

}  // namespace
}  // namespace sc
