#include "train/loss_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/markup_escape.h"

namespace sc {
namespace {

constexpr double kWidth = 760, kHeight = 420;
constexpr double kLeft = 64, kRight = 20, kTop = 40, kBottom = 50;

// "Nice" tick spacing (1, 2 or 5 times a power of ten) giving about `target` ticks.
double tick_step(double span, int target) {
  double raw = span / target;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double r = raw / magnitude;
  return magnitude * (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10);
}


}  // namespace

std::string render_loss_svg(const std::vector<LossPoint>& train, const std::vector<LossPoint>& val,
                            const std::string& title) {
  double x_max = 1, y_min = 1e300, y_max = -1e300;
  auto extend = [&](const std::vector<LossPoint>& points) {
    for (const auto& p : points) {
      if (!std::isfinite(p.loss)) continue;
      x_max = std::max(x_max, p.step);
      y_min = std::min(y_min, p.loss);
      y_max = std::max(y_max, p.loss);
    }
  };
  extend(train);
  extend(val);
  if (y_min > y_max) y_min = 0, y_max = 1;
  if (y_max - y_min < 1e-6) y_max = y_min + 1;
  const double pad = 0.05 * (y_max - y_min);
  y_min -= pad;
  y_max += pad;
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto sx = [&](double x) { return kLeft + plot_w * x / x_max; };
  auto sy = [&](double y) { return kTop + plot_h * (1.0 - (y - y_min) / (y_max - y_min)); };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"24\" font-size=\"15\" font-weight=\"bold\">{3}</text>\n",
      kWidth, kHeight, kLeft, markup_escape(title));
  // Grid and ticks.
  const double ystep = tick_step(y_max - y_min, 6);
  for (double y = std::ceil(y_min / ystep) * ystep; y <= y_max; y += ystep) {
    svg += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#e5e5e5\"/>"
                       "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:g}</text>\n",
                       kLeft, kLeft + plot_w, sy(y), kLeft - 6, sy(y) + 4, std::round(y / ystep) * ystep);
  }
  const double xstep = tick_step(x_max, 8);
  for (double x = 0; x <= x_max + 1e-9; x += xstep) {
    svg += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#e5e5e5\"/>"
                       "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
                       sx(x), kTop, kTop + plot_h, kTop + plot_h + 16, x);
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#555\"/>\n", kLeft,
                     kTop, plot_w, plot_h);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text>\n", kLeft + plot_w / 2, kHeight - 10);
  svg += fmt::format("<text x=\"16\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0})\">"
                     "loss (nats/token)</text>\n", kTop + plot_h / 2);

  auto polyline = [&](const std::vector<LossPoint>& points, const char* style) {
    std::string path;
    for (const auto& p : points) {
      if (std::isfinite(p.loss)) path += fmt::format("{:.1f},{:.1f} ", sx(p.step), sy(p.loss));
    }
    if (!path.empty()) svg += fmt::format("<polyline fill=\"none\" {} points=\"{}\"/>\n", style, path);
  };
  polyline(train, "stroke=\"#9ecae1\" stroke-width=\"1\"");
  std::vector<LossPoint> smooth;
  double ema = 0, weight = 0;
  for (const auto& p : train) {
    if (!std::isfinite(p.loss)) continue;
    ema = 0.9 * ema + 0.1 * p.loss;
    weight = 0.9 * weight + 0.1;
    smooth.push_back({p.step, ema / weight});
  }
  polyline(smooth, "stroke=\"#08519c\" stroke-width=\"2\"");
  polyline(val, "stroke=\"#d94801\" stroke-width=\"2\" stroke-dasharray=\"4 3\"");
  for (const auto& p : val) {
    if (std::isfinite(p.loss)) {
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"#d94801\"/>\n", sx(p.step), sy(p.loss));
    }
  }
  // Legend.
  const double lx = kLeft + plot_w - 190, ly = kTop + 14;
  svg += fmt::format(
      "<rect x=\"{0}\" y=\"{1}\" width=\"180\" height=\"{2}\" fill=\"white\" stroke=\"#ccc\"/>\n"
      "<line x1=\"{3}\" x2=\"{4}\" y1=\"{5}\" y2=\"{5}\" stroke=\"#08519c\" stroke-width=\"2\"/>"
      "<text x=\"{6}\" y=\"{7}\">train (EMA 0.9)</text>\n",
      lx, ly - 10, val.empty() ? 24 : 44, lx + 8, lx + 32, ly + 2, lx + 40, ly + 6);
  if (!val.empty()) {
    svg += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#d94801\" stroke-width=\"2\" "
                       "stroke-dasharray=\"4 3\"/><text x=\"{3}\" y=\"{4}\">validation</text>\n",
                       lx + 8, lx + 32, ly + 22, lx + 40, ly + 26);
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace sc
