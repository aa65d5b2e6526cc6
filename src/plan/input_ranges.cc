#include "plan/input_ranges.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace sc::plan {

Result<int64_t> parse_integer_flag(std::string_view flag, std::string_view text, IntegerRange range) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < range.min ||
      value > range.max) {
    return Status::invalid("{} must be an integer in [{}, {}] (got {})", flag, range.min, range.max, quote_input(text));
  }
  return value;
}

Result<double> parse_number_flag(std::string_view flag, std::string_view text, NumberRange range) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || !std::isfinite(value) ||
      value < range.min || value > range.max) {
    return Status::invalid("{} must be a number in [{}, {}] (got {})", flag, range.min, range.max, quote_input(text));
  }
  return value;
}

Status check_integer(std::string_view what, int64_t value, IntegerRange range) {
  if (value < range.min || value > range.max)
    return Status::invalid("{} must be an integer in [{}, {}] (got {})", what, range.min, range.max, value);
  return Status();
}

Status check_number(std::string_view what, double value, NumberRange range) {
  if (!(std::isfinite(value) && value >= range.min && value <= range.max))
    return Status::invalid("{} must be a number in [{}, {}] (got {})", what, range.min, range.max, value);
  return Status();
}

std::string quote_input(std::string_view text, size_t max_chars) {
  size_t cut = std::min(max_chars, text.size());
  // Not inside a UTF-8 character: back up over its continuation bytes.
  while (cut < text.size() && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  std::string out = "'";
  for (char c : text.substr(0, cut)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  out += cut < text.size() ? "...'" : "'";
  return out;
}

}  // namespace sc::plan
