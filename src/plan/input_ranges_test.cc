#include "plan/input_ranges.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace sc::plan {
namespace {

TEST(PlanInputRanges, IntegerFlagsAreDecimalIntegersInRange) {
  auto gpus = parse_integer_flag("--gpus", "16384", kGpusRange);
  ASSERT_TRUE(gpus.ok()) << gpus.status().message();
  EXPECT_EQ(*gpus, 16384);
  EXPECT_EQ(*parse_integer_flag("--zero", "0", kZeroRange), 0);
  EXPECT_EQ(*parse_integer_flag("--gpus", "10000000", kGpusRange), 10'000'000);
  // Out of range, overflowing (not clamped to INT64_MAX), not an integer, empty.
  const struct {
    const char* text;
    const char* error;
  } bad[] = {
      {"1000000000000", "--gpus must be an integer in [1, 10000000] (got '1000000000000')"},
      {"99999999999999999999", "--gpus must be an integer in [1, 10000000] (got '99999999999999999999')"},
      {"0", "--gpus must be an integer in [1, 10000000] (got '0')"},
      {"-8", "--gpus must be an integer in [1, 10000000] (got '-8')"},
      {"1e3", "--gpus must be an integer in [1, 10000000] (got '1e3')"},
      {"64.5", "--gpus must be an integer in [1, 10000000] (got '64.5')"},
      {" 64", "--gpus must be an integer in [1, 10000000] (got ' 64')"},
      {"", "--gpus must be an integer in [1, 10000000] (got '')"},
  };
  for (const auto& b : bad) {
    auto r = parse_integer_flag("--gpus", b.text, kGpusRange);
    ASSERT_FALSE(r.ok()) << b.text;
    EXPECT_EQ(r.status().message(), b.error);
  }
}

TEST(PlanInputRanges, NumberFlagsAreFiniteAndInRange) {
  EXPECT_EQ(*parse_number_flag("--train-tokens", "15.6e12", kTrainTokensRange), 15.6e12);
  EXPECT_EQ(*parse_number_flag("--gpu-hour-usd", "0", kGpuHourUsdRange), 0.0);
  for (const char* text : {"inf", "-inf", "nan", "infinity", "1e300", "0", "-1", "1e12x", ""}) {
    auto r = parse_number_flag("--train-tokens", text, kTrainTokensRange);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().message(), "--train-tokens must be a number in [1, 1000000000000000] (got '" + std::string(text) + "')");
  }
}

TEST(PlanInputRanges, ValuesAlreadyParsedAreCheckedTheSameWay) {
  EXPECT_TRUE(check_integer("--seq-len", 8192, kSeqLenRange).ok());
  EXPECT_EQ(check_integer("--seq-len", int64_t{1} << 40, kSeqLenRange).message(),
            "--seq-len must be an integer in [1, 16777216] (got 1099511627776)");
  EXPECT_TRUE(check_number("--train-tokens", 1e13, kTrainTokensRange).ok());
  EXPECT_FALSE(check_number("--train-tokens", std::numeric_limits<double>::infinity(), kTrainTokensRange).ok());
  EXPECT_FALSE(check_number("--train-tokens", std::numeric_limits<double>::quiet_NaN(), kTrainTokensRange).ok());
}

TEST(PlanInputRanges, QuotedInputIsShortAndPrintable) {
  EXPECT_EQ(quote_input("grok-1"), "'grok-1'");
  EXPECT_EQ(quote_input("a\nb\x7f"), "'a?b?'");
  const std::string long_name(100000, 'x');
  EXPECT_EQ(quote_input(long_name), "'" + std::string(64, 'x') + "...'");
  // Not cut inside a UTF-8 character: "ü" is two bytes.
  EXPECT_EQ(quote_input("aü", 2), "'a...'");
}

}  // namespace
}  // namespace sc::plan
