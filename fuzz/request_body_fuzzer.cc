// The bodies of `supercluster serve`'s requests (docs/serving.md): a
// completion, a chat completion, /tokenize and /detokenize, read as the
// server reads them; and the same bytes as a checkpoint's chat_template.
// Parsing must answer an ApiError or parameters, never crash; what it
// accepts must render and serialize.
#include "fuzz_util.h"
#include "serve/chat_template.h"
#include "serve/openai_api.h"
#include "serve/stop_strings.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sc::fuzz::run_guarded([&] {
    const std::string body(sc::fuzz::as_text(data, size));
    for (const bool chat : {false, true}) {
      sc::CompletionParams params;
      if (auto error = sc::parse_completion_request(body, chat, &params)) {
        (void)sc::json_text(error->to_json()).size();
        continue;
      }
      const sc::ChatTemplate default_template;
      auto prompt = chat ? default_template.render(params.messages) : sc::Result<std::string>(params.prompt);
      if (!prompt.ok()) continue;
      // Generated text is arbitrary bytes: the prompt stands in for it.
      sc::StopStringMatcher stops(params.stop);
      std::string shown = stops.add(*prompt);
      shown += stops.flush();
      const sc::CompletionInfo info{.id = "x", .model = "m", .created = 0, .chat = chat};
      (void)sc::completion_chunk(info, shown, sc::FinishReason::kStop, 1, 1).size();
      (void)sc::json_text(sc::completion_response(info, shown, sc::FinishReason::kLength, 1, 1)).size();
    }
    std::string content;
    (void)sc::parse_tokenize_request(body, &content);
    std::vector<uint32_t> ids;
    (void)sc::parse_detokenize_request(body, 400, &ids);
    if (auto parsed = sc::ChatTemplate::parse(body, "chat_template"); parsed.ok()) {
      (void)parsed->render({{"system", "s"}, {"user", "u"}, {"assistant", "a"}});
    }
  });
}
