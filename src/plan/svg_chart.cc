#include "plan/svg_chart.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/markup_escape.h"

namespace sc::plan {
namespace {

// "12.3" / "1.2k" / "3.4M": tick and point labels short enough for a chart.
std::string short_number(double v) {
  const double a = std::abs(v);
  if (a >= 1e9) return fmt::format("{:.3g}G", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.3g}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:.3g}k", v / 1e3);
  if (a >= 1000 && v == std::round(v)) return fmt::format("{:.0f}", v);
  return fmt::format("{:.3g}", v);
}

// Up to ~5 round tick values covering [0, top].
std::vector<double> nice_ticks(double top) {
  if (!(top > 0)) return {0, 1};
  const double raw = top / 4;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  std::vector<double> ticks;
  for (double t = 0; t <= top * 1.0001 + step; t += step) {
    ticks.push_back(t);
    if (t >= top) break;
  }
  return ticks;
}

}  // namespace

std::string stacked_bar_svg(const std::vector<BarSegment>& segments, const std::string& unit, double reference,
                            const std::string& reference_label) {
  // Parts that are zero stay out of the legend (a dense model has no
  // all-to-all), unless everything is zero.
  std::vector<BarSegment> shown;
  for (const auto& s : segments)
    if (s.value > 0) shown.push_back(s);
  if (shown.empty()) shown = segments;
  double total = 0;
  for (const auto& s : shown) total += std::max(0.0, s.value);
  const double scale_max = reference > 0 ? std::max(total, reference) * 1.05 : total;
  const double width = 720, bar_x = 10, bar_w = 700, bar_y = 10, bar_h = 34;
  const int legend_rows = static_cast<int>((shown.size() + 1) / 2);
  const double height = bar_y + bar_h + 30 + legend_rows * 22 + 10;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"13\" role=\"img\">\n",
      width, height);
  double x = bar_x;
  for (const auto& s : shown) {
    if (s.value <= 0 || scale_max <= 0) continue;
    const double w = s.value / scale_max * bar_w;
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\"><title>{}: {} {}</title></rect>\n",
                       x, bar_y, w, bar_h, s.color, markup_escape(s.label), short_number(s.value), markup_escape(unit));
    x += w;
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#555\"/>\n", bar_x, bar_y,
                     bar_w, bar_h);
  if (reference > 0 && scale_max > 0) {
    const double rx = bar_x + reference / scale_max * bar_w;
    svg += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#c00\" stroke-width=\"3\"/>\n", rx,
                       bar_y - 6, bar_y + bar_h + 6);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" fill=\"#c00\" text-anchor=\"{}\">{}</text>\n", rx, bar_y + bar_h + 20,
                       rx > width / 2 ? "end" : "start", markup_escape(reference_label));
  }
  for (size_t i = 0; i < shown.size(); ++i) {
    const auto& s = shown[i];
    const double lx = bar_x + (i % 2) * 360, ly = bar_y + bar_h + 34 + static_cast<double>(i / 2) * 22;
    const double share = total > 0 ? 100 * s.value / total : 0;
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/>\n", lx, ly - 11, s.color);
    svg += fmt::format("<text x=\"{}\" y=\"{}\">{}: {} {} ({:.1f}%)</text>\n", lx + 20, ly, markup_escape(s.label),
                       short_number(s.value), markup_escape(unit), share);
  }
  svg += "</svg>\n";
  return svg;
}

std::string line_chart_svg(const std::string& title, const std::vector<double>& xs, const std::vector<double>& ys,
                           const std::string& x_label, const std::string& y_label, bool log_x) {
  const double width = 350, height = 240, left = 56, right = 16, top = 28, bottom = 44;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  std::vector<std::pair<double, double>> pts;
  for (size_t i = 0; i < xs.size() && i < ys.size(); ++i)
    if (std::isfinite(ys[i]) && (!log_x || xs[i] > 0)) pts.emplace_back(xs[i], ys[i]);
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\n"
      "<text x=\"{2}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{3}</text>\n",
      width, height, left, markup_escape(title));
  svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333\"/>\n", left, top, top + plot_h);
  svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#333\"/>\n", left, top + plot_h,
                     left + plot_w);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + plot_w / 2, height - 6,
                     markup_escape(x_label));
  svg += fmt::format("<text x=\"12\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {0})\">{1}</text>\n",
                     top + plot_h / 2, markup_escape(y_label));
  if (pts.empty()) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data</text>\n</svg>\n", left + plot_w / 2,
                       top + plot_h / 2);
    return svg;
  }
  double y_max = 0;
  for (const auto& p : pts) y_max = std::max(y_max, p.second);
  const std::vector<double> ticks = nice_ticks(y_max * 1.1);
  const double y_top = ticks.back() > 0 ? ticks.back() : 1;
  auto fx = [&](double x) {
    double lo = pts.front().first, hi = pts.front().first;
    for (const auto& p : pts) lo = std::min(lo, p.first), hi = std::max(hi, p.first);
    if (hi == lo) return left + plot_w / 2;
    const double t = log_x ? (std::log(x) - std::log(lo)) / (std::log(hi) - std::log(lo)) : (x - lo) / (hi - lo);
    return left + 22 + t * (plot_w - 40);
  };
  auto fy = [&](double y) { return top + plot_h - y / y_top * plot_h; };
  for (double t : ticks) {
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>\n", left, fy(t),
                       left + plot_w);
    svg += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 4, fy(t) + 4, short_number(t));
  }
  std::string path;
  for (const auto& p : pts) path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", fx(p.first), fy(p.second));
  svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n", path);
  for (const auto& p : pts) {
    svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"#1f77b4\"/>\n", fx(p.first), fy(p.second));
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#1f4e79\">{}</text>\n", fx(p.first),
                       fy(p.second) - 7, short_number(p.second));
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", fx(p.first), top + plot_h + 14,
                       short_number(p.first));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace sc::plan
