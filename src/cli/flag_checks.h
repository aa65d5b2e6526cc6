// Checks of flag text that CLI11 (2.1) lets through: it converts integers
// with strtoll/strtoull, so text past 64 bits silently becomes the largest
// value, "-1" given to an unsigned flag becomes 2^64 - 1, and a leading 0
// reads as octal. Ranges are checked after parsing, by the options' own
// validation; this only makes sure the value checked is the one typed.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <type_traits>

#include "core/status.h"
#include "kernels/weight_format.h"

namespace sc::cli {

// An error "FLAG must be EXPECTED (got TEXT)" unless every value given to
// `option` is a plain decimal integer (no leading zeros, a sign only if
// `is_signed`) that fits 64 bits.
Status check_integer_text(const CLI::Option& option, bool is_signed, const std::string& expected);

template <class T>
Status check_integer_text(const CLI::Option& option, const std::string& expected) {
  static_assert(std::is_integral_v<T>);
  return check_integer_text(option, std::is_signed_v<T>, expected);
}

// What `--weights NAME` means (generate, serve): fp32, bf16 or int8, else an
// error naming the flag and the choices.
Result<WeightFormat> weight_format_from_flag(const std::string& name);

// The help text of --weights, shared by the commands that take it.
inline constexpr const char* kWeightsFlagHelp =
    "Format the matrices are multiplied in: fp32 (as trained), bf16 or int8 (weight-only, a scale per 32 "
    "weights); decode reads 4, 2 or 1.125 bytes per weight";

}  // namespace sc::cli
