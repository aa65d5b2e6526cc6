// Reading JSON that came from outside (a file, a flag, a request): parsing
// bounded in nesting depth, and typed field reads that check type,
// finiteness and range and return a Status naming the source and the field.
// Nothing here throws, and no error message serializes an unbounded value.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sc {

// Deeper nesting than any file of ours has is refused before parsing: the
// recursion of printing or walking such a value is what crashes.
inline constexpr size_t kMaxJsonDepth = 64;

// Parses `text`; an error names `source`, says where parsing stopped and
// quotes nothing of the input beyond a short excerpt.
Result<nlohmann::json> parse_json(std::string_view text, const std::string& source,
                                  size_t max_depth = kMaxJsonDepth);

// A value as an error message shows it: its type and, for a scalar, a
// prefix of at most `max_chars` characters; arrays and objects by size only.
std::string describe_json(const nlohmann::json& value, size_t max_chars = 40);

// A string (a key, a name) as an error message quotes it: at most
// `max_chars` characters, control characters as '?', "..." when cut.
std::string text_excerpt(std::string_view text, size_t max_chars = 40);

// Typed reads of the fields of one JSON object. A field that is absent (or
// null, as Hugging Face writes None) is "missing": the *_or forms return
// their default, the others an error. A present field of the wrong type or
// out of range is always an error "SOURCE: 'FIELD' must be ... (got ...)".
class JsonReader {
 public:
  // An error unless `value` is an object.
  static Result<JsonReader> of(const nlohmann::json& value, std::string source);

  const std::string& source() const { return source_; }
  const nlohmann::json& json() const { return *object_; }
  bool has(std::string_view key) const;

  Result<int64_t> integer(std::string_view key, int64_t min = std::numeric_limits<int64_t>::min(),
                          int64_t max = std::numeric_limits<int64_t>::max()) const;
  Result<int64_t> integer_or(std::string_view key, int64_t fallback,
                             int64_t min = std::numeric_limits<int64_t>::min(),
                             int64_t max = std::numeric_limits<int64_t>::max()) const;
  Result<uint64_t> unsigned_integer(std::string_view key,
                                    uint64_t max = std::numeric_limits<uint64_t>::max()) const;
  // Finite numbers in [min, max] (integers are numbers too).
  Result<double> number(std::string_view key, double min = -std::numeric_limits<double>::max(),
                        double max = std::numeric_limits<double>::max()) const;
  Result<double> number_or(std::string_view key, double fallback, double min = -std::numeric_limits<double>::max(),
                           double max = std::numeric_limits<double>::max()) const;
  Result<bool> boolean(std::string_view key) const;
  Result<bool> boolean_or(std::string_view key, bool fallback) const;
  Result<std::string> string(std::string_view key, size_t max_bytes = 4096) const;
  Result<std::string> string_or(std::string_view key, std::string fallback, size_t max_bytes = 4096) const;
  // The field as an object (a reader whose source is "SOURCE: 'FIELD'") or an array.
  Result<JsonReader> object(std::string_view key) const;
  Result<const nlohmann::json*> array(std::string_view key) const;

 private:
  JsonReader(const nlohmann::json* object, std::string source) : object_(object), source_(std::move(source)) {}
  const nlohmann::json* field(std::string_view key) const;  // null when missing
  Status missing(std::string_view key, const char* expected) const;
  Status wrong(std::string_view key, const char* expected, const nlohmann::json& got) const;

  const nlohmann::json* object_;
  std::string source_;
};

}  // namespace sc
