#include "core/json_reader.h"

#include <fmt/format.h>

#include <cmath>

namespace sc {

namespace {
// The deepest nesting of arrays and objects in `text`, outside strings;
// stops counting once past `limit`.
size_t nesting_depth(std::string_view text, size_t limit, size_t* where) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) {
        *where = i;
        return deepest;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

std::string text_excerpt(std::string_view text, size_t max_chars) {
  std::string out;
  for (char c : text.substr(0, max_chars)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (text.size() > max_chars) out += "...";
  return out;
}

Result<nlohmann::json> parse_json(std::string_view text, const std::string& source, size_t max_depth) {
  size_t where = 0;
  if (nesting_depth(text, max_depth, &where) > max_depth) {
    return Status::invalid("{}: JSON nested more than {} levels deep (at byte {})", source, max_depth, where);
  }
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    // Parse again with exceptions only to learn where it failed.
    try {
      (void)nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      return Status::invalid("{}: not valid JSON (byte {})", source, e.byte);
    } catch (const nlohmann::json::exception&) {
    }
    return Status::invalid("{}: not valid JSON", source);
  }
  return value;
}

std::string describe_json(const nlohmann::json& value, size_t max_chars) {
  if (value.is_array()) return fmt::format("an array of {}", value.size());
  if (value.is_object()) return fmt::format("an object of {} keys", value.size());
  if (value.is_string()) return fmt::format("string \"{}\"", text_excerpt(value.get_ref<const std::string&>(), max_chars));
  // A scalar's text is short (a number, true, false, null).
  return fmt::format("{} {}", value.type_name(), text_excerpt(value.dump(), max_chars));
}

Result<JsonReader> JsonReader::of(const nlohmann::json& value, std::string source) {
  if (!value.is_object()) return Status::invalid("{}: must be a JSON object (got {})", source, describe_json(value));
  return JsonReader(&value, std::move(source));
}

const nlohmann::json* JsonReader::field(std::string_view key) const {
  const auto it = object_->find(key);
  return it == object_->end() || it->is_null() ? nullptr : &*it;
}

bool JsonReader::has(std::string_view key) const { return field(key) != nullptr; }

Status JsonReader::missing(std::string_view key, const char* expected) const {
  return Status::invalid("{}: '{}' is required ({})", source_, key, expected);
}

Status JsonReader::wrong(std::string_view key, const char* expected, const nlohmann::json& got) const {
  return Status::invalid("{}: '{}' must be {} (got {})", source_, key, expected, describe_json(got));
}

Result<int64_t> JsonReader::integer(std::string_view key, int64_t min, int64_t max) const {
  const nlohmann::json* v = field(key);
  const std::string expected = fmt::format("an integer in [{}, {}]", min, max);
  if (!v) return missing(key, expected.c_str());
  if (!v->is_number_integer()) return wrong(key, expected.c_str(), *v);
  // nlohmann keeps every non-negative integer as unsigned.
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return wrong(key, expected.c_str(), *v);
  }
  const int64_t value = v->get<int64_t>();
  if (value < min || value > max) return wrong(key, expected.c_str(), *v);
  return value;
}

Result<int64_t> JsonReader::integer_or(std::string_view key, int64_t fallback, int64_t min, int64_t max) const {
  if (!has(key)) return fallback;
  return integer(key, min, max);
}

Result<uint64_t> JsonReader::unsigned_integer(std::string_view key, uint64_t max) const {
  const nlohmann::json* v = field(key);
  const std::string expected = fmt::format("an integer in [0, {}]", max);
  if (!v) return missing(key, expected.c_str());
  const bool fits = v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0);
  if (!fits || v->get<uint64_t>() > max) return wrong(key, expected.c_str(), *v);
  return v->get<uint64_t>();
}

Result<double> JsonReader::number(std::string_view key, double min, double max) const {
  const nlohmann::json* v = field(key);
  const std::string expected = fmt::format("a number in [{}, {}]", min, max);
  if (!v) return missing(key, expected.c_str());
  if (!v->is_number()) return wrong(key, expected.c_str(), *v);
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < min || d > max) return wrong(key, expected.c_str(), *v);
  return d;
}

Result<double> JsonReader::number_or(std::string_view key, double fallback, double min, double max) const {
  if (!has(key)) return fallback;
  return number(key, min, max);
}

Result<bool> JsonReader::boolean(std::string_view key) const {
  const nlohmann::json* v = field(key);
  if (!v) return missing(key, "true or false");
  if (!v->is_boolean()) return wrong(key, "true or false", *v);
  return v->get<bool>();
}

Result<bool> JsonReader::boolean_or(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  return boolean(key);
}

Result<std::string> JsonReader::string(std::string_view key, size_t max_bytes) const {
  const nlohmann::json* v = field(key);
  const std::string expected = fmt::format("a string of at most {} bytes", max_bytes);
  if (!v) return missing(key, expected.c_str());
  if (!v->is_string() || v->get_ref<const std::string&>().size() > max_bytes) return wrong(key, expected.c_str(), *v);
  return v->get<std::string>();
}

Result<std::string> JsonReader::string_or(std::string_view key, std::string fallback, size_t max_bytes) const {
  if (!has(key)) return fallback;
  return string(key, max_bytes);
}

Result<JsonReader> JsonReader::object(std::string_view key) const {
  const nlohmann::json* v = field(key);
  if (!v) return missing(key, "an object");
  if (!v->is_object()) return wrong(key, "an object", *v);
  return JsonReader(v, fmt::format("{}: '{}'", source_, key));
}

Result<const nlohmann::json*> JsonReader::array(std::string_view key) const {
  const nlohmann::json* v = field(key);
  if (!v) return missing(key, "an array");
  if (!v->is_array()) return wrong(key, "an array", *v);
  return v;
}

}  // namespace sc
