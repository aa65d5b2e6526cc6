#include "cli/flag_checks.h"

#include <charconv>
#include <cstdint>
#include <string_view>

#include "core/json_reader.h"

namespace sc::cli {

namespace {
bool is_plain_integer(std::string_view text, bool is_signed) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  const bool negative = !text.empty() && text[0] == '-';
  if (negative && !is_signed) return false;
  const std::string_view digits = negative ? text.substr(1) : text;
  if (digits.empty() || (digits.size() > 1 && digits[0] == '0')) return false;
  auto fits = [&](auto value) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return error == std::errc() && end == text.data() + text.size();
  };
  return is_signed ? fits(int64_t{0}) : fits(uint64_t{0});
}
}  // namespace

Status check_integer_text(const CLI::Option& option, bool is_signed, const std::string& expected) {
  for (const std::string& text : option.results()) {
    if (!is_plain_integer(text, is_signed)) {
      return Status::invalid("{} must be {} (got {})", option.get_name(), expected, text_excerpt(text, 64));
    }
  }
  return Status();
}

Result<WeightFormat> weight_format_from_flag(const std::string& name) {
  if (auto format = weight_format_from_name(name)) return *format;
  return Status::invalid("--weights must be fp32, bf16 or int8 (got '{}')", name);
}

}  // namespace sc::cli
