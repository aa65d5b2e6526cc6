// Text placed inside HTML or SVG (XML) markup: the four characters that
// would end a tag, an entity or an attribute value, replaced by entities.
// One definition for the loss plot, the planner's charts and its report.
#pragma once

#include <string>

namespace sc {

inline std::string markup_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace sc
