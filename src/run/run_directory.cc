#include "run/run_directory.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "run/checkpoint_store.h"

namespace sc {
namespace fs = std::filesystem;

namespace {
constexpr size_t kCheckpointsNamed = 4;

int64_t count_lines(const std::string& path) {
  std::ifstream in(path);
  int64_t lines = 0;
  std::string line;
  while (std::getline(in, line)) lines += !line.empty();
  return lines;
}
}  // namespace

std::string ExistingRun::describe() const {
  std::vector<std::string> parts;
  if (!checkpoints.empty()) {
    std::string named;
    for (size_t i = 0; i < checkpoints.size() && i < kCheckpointsNamed; ++i) {
      named += (i > 0 ? ", " : "") + checkpoints[i];
    }
    if (checkpoints.size() > kCheckpointsNamed) named += fmt::format(" and {} more", checkpoints.size() - kCheckpointsNamed);
    parts.push_back(fmt::format("checkpoint{} {}", checkpoints.size() > 1 ? "s" : "", named));
  }
  if (metrics_lines > 0) parts.push_back(fmt::format("metrics.jsonl of {} lines", metrics_lines));
  return fmt::format("{}", fmt::join(parts, "; "));
}

ExistingRun find_existing_run(const RunPaths& run) {
  ExistingRun existing;
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(run.checkpoints(), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with("step_")) names.push_back(name);
  }
  std::sort(names.rbegin(), names.rend());
  for (const std::string& name : names) {
    const Status valid = verify_checkpoint(run.checkpoints() + "/" + name);
    existing.checkpoints.push_back(valid.ok() ? name : fmt::format("{} (not valid: {})", name, valid.message()));
  }
  existing.metrics_lines = count_lines(run.metrics());
  return existing;
}

Status remove_run_outputs(const RunPaths& run) {
  for (const std::string& path : {run.checkpoints(), run.metrics(), run.loss_plot()}) {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) return Status::io_error("{}: cannot remove: {}", path, ec.message());
  }
  return Status();
}

}  // namespace sc
