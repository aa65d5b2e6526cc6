#include "serve/chat_template.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/json_reader.h"

namespace sc {
namespace {

constexpr std::string_view kContent = "{content}";
constexpr size_t kMaxTemplateBytes = 1 << 16;

std::string fill(const std::string& turn, const std::string& content) {
  const size_t at = turn.find(kContent);
  return turn.substr(0, at) + content + turn.substr(at + kContent.size());
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view json, const std::string& source) {
  SC_ASSIGN_OR_RETURN(const nlohmann::json parsed, parse_json(json, source));
  SC_ASSIGN_OR_RETURN(const JsonReader reader, JsonReader::of(parsed, source));
  ChatTemplate t;
  for (auto [key, field] : {std::pair{"system", &t.system}, {"user", &t.user}, {"assistant", &t.assistant}}) {
    SC_ASSIGN_OR_RETURN(*field, reader.string_or(key, *field));
    if (field->find(kContent) == std::string::npos) {
      return Status::invalid("{}: '{}' must contain {{content}}", source, key);
    }
  }
  SC_ASSIGN_OR_RETURN(t.generation_prompt, reader.string_or("generation_prompt", t.generation_prompt));
  if (reader.has("stop")) {
    SC_ASSIGN_OR_RETURN(const nlohmann::json* stops, reader.array("stop"));
    t.stop.clear();
    for (const nlohmann::json& s : *stops) {
      if (!s.is_string())
        return Status::invalid("{}: 'stop' must be a list of strings (got {})", source, describe_json(s));
      t.stop.push_back(s.get<std::string>());
    }
  }
  return t;
}

Result<ChatTemplate> ChatTemplate::load(const std::string& checkpoint_dir) {
  const std::string path = checkpoint_dir + "/" + kChatTemplateFile;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return ChatTemplate();
  if (std::filesystem::file_size(path, ec) > kMaxTemplateBytes || ec) {
    return Status::invalid("{}: not a readable file of at most {} bytes", path, kMaxTemplateBytes);
  }
  std::ifstream in(path, std::ios::binary);
  const std::string text(std::istreambuf_iterator<char>(in), {});
  if (!in.good() && !in.eof()) return Status::invalid("{}: cannot read", path);
  return parse(text, path);
}

Result<std::string> ChatTemplate::render(const std::vector<ChatMessage>& messages) const {
  std::string text;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "system") {
      text += fill(system, m.content);
    } else if (m.role == "user") {
      text += fill(user, m.content);
    } else if (m.role == "assistant") {
      text += fill(assistant, m.content);
    } else {
      return Status::invalid("'messages[{}].role' must be system, user or assistant (got \"{}\")", i,
                             text_excerpt(m.role));
    }
  }
  return text + generation_prompt;
}

}  // namespace sc
