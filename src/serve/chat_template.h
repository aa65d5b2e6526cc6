// Chat messages to the text a model continues (docs/serving.md, "Chat
// template"). A model trained on plain text has never seen roles, so the
// default writes a dialogue as a script: "User: ...\nAssistant: ...\n" and
// ends with "Assistant:" for the model to continue; a stop string at the next
// "\nUser:" ends the reply where the model would start the user's turn. A
// checkpoint directory may carry its own template in a file `chat_template`
// (JSON), so a fine-tuned model brings the format it was tuned on.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sc {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct ChatTemplate {
  // Each role's turn; "{content}" stands for the message's text.
  std::string system = "System: {content}\n";
  std::string user = "User: {content}\n";
  std::string assistant = "Assistant: {content}\n";
  std::string generation_prompt = "Assistant:";  // after the last message
  std::vector<std::string> stop = {"\nUser:"};   // added to every chat request's stop

  // `json`: the file's text; `source` names it in errors. Absent fields keep
  // the default's; each role's text must contain "{content}".
  static Result<ChatTemplate> parse(std::string_view json, const std::string& source);
  // The template in `checkpoint_dir`/chat_template, or the default when
  // there is no such file.
  static Result<ChatTemplate> load(const std::string& checkpoint_dir);

  // The prompt for `messages`; an unknown role is an error naming it.
  Result<std::string> render(const std::vector<ChatMessage>& messages) const;
};

inline constexpr const char* kChatTemplateFile = "chat_template";

}  // namespace sc
