#include "plan/svg_chart.h"

#include <gtest/gtest.h>

#include <string>

#include "core/markup_escape.h"

namespace sc::plan {
namespace {

TEST(PlanReport, LabelsAreEscaped) {
  EXPECT_EQ(markup_escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
  const std::string svg = stacked_bar_svg({{"<x>", 1, "#000"}}, "s");
  EXPECT_EQ(svg.find("<x>"), std::string::npos);
  EXPECT_NE(svg.find("&lt;x&gt;"), std::string::npos);
}

}  // namespace
}  // namespace sc::plan
