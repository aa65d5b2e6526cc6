#include "core/json_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace sc {
namespace {

std::string message_of(const Status& s) { return s.message(); }

TEST(JsonReader, DeepNestingIsRefusedBeforeParsingAndStringsDoNotCount) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto parsed = parse_json(deep, "x.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "x.json: JSON nested more than 64 levels deep (at byte 64)");
  const std::string brackets_in_a_string = "{\"a\": \"" + std::string(1000, '[') + "\\\"\"}";
  EXPECT_TRUE(parse_json(brackets_in_a_string, "y.json").ok());
  EXPECT_TRUE(parse_json(std::string(64, '[') + std::string(64, ']'), "z.json").ok());
  auto broken = parse_json("{\"a\": 1,,}", "b.json");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(message_of(broken.status()).find("b.json: not valid JSON (byte"), std::string::npos);
}

TEST(JsonReader, DescriptionsAreBounded) {
  EXPECT_EQ(describe_json(nlohmann::json::array({1, 2, 3})), "an array of 3");
  EXPECT_EQ(describe_json(nlohmann::json::parse("{\"a\":{\"b\":[1]}}")), "an object of 1 keys");
  EXPECT_EQ(describe_json("five"), "string \"five\"");
  EXPECT_EQ(describe_json(std::string(1000, 'x')).size(), std::string("string \"\"...").size() + 40);
  EXPECT_EQ(describe_json(nlohmann::json(nullptr)), "null null");
}

TEST(JsonReader, FieldsAreCheckedForTypeRangeAndFiniteness) {
  const nlohmann::json j = nlohmann::json::parse(R"({"n": 5, "neg": -3, "big": 18446744073709551615, "x": 0.5,
      "s": "text", "b": true, "nul": null, "o": {"k": 1}, "a": [1]})");
  auto r = JsonReader::of(j, "f.json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->integer("n", 1, 10), 5);
  EXPECT_EQ(*r->integer("neg", -5, 0), -3);
  EXPECT_EQ(message_of(r->integer("n", 6, 10).status()), "f.json: 'n' must be an integer in [6, 10] (got number 5)");
  EXPECT_FALSE(r->integer("big").ok());  // past int64
  EXPECT_EQ(*r->unsigned_integer("big"), 18446744073709551615ull);
  EXPECT_FALSE(r->unsigned_integer("neg").ok());
  EXPECT_FALSE(r->integer("x").ok());
  EXPECT_EQ(*r->number("n"), 5.0);
  EXPECT_EQ(*r->number("x", 0, 1), 0.5);
  EXPECT_FALSE(r->number("x", 0.6, 1).ok());
  EXPECT_EQ(message_of(r->number("s").status()).find("f.json: 's' must be a number"), 0u);
  EXPECT_EQ(*r->string("s"), "text");
  EXPECT_FALSE(r->string("s", 2).ok());
  EXPECT_EQ(*r->boolean("b"), true);
  EXPECT_EQ(*r->integer_or("nul", 7), 7);  // null is missing, as Hugging Face writes None
  EXPECT_EQ(*r->number_or("absent", 1.5), 1.5);
  EXPECT_EQ(message_of(r->integer("absent").status()),
            "f.json: 'absent' is required (an integer in [-9223372036854775808, 9223372036854775807])");
  auto o = r->object("o");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(message_of(o->integer("k", 2, 3).status()).find("f.json: 'o': 'k' must be"), 0u);
  EXPECT_TRUE(r->array("a").ok());
  EXPECT_FALSE(r->array("o").ok());
  EXPECT_FALSE(JsonReader::of(nlohmann::json::array(), "g.json").ok());
  // Non-finite numbers cannot come from JSON text, but can from a program.
  nlohmann::json inf = {{"v", INFINITY}};
  EXPECT_FALSE(JsonReader::of(inf, "h")->number("v").ok());
}

}  // namespace
}  // namespace sc
