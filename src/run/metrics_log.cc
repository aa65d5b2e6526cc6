#include "run/metrics_log.h"

#include <fstream>

#include "core/file_util.h"

namespace sc {

namespace {
std::optional<double> number_field(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<double>();
}
}  // namespace

std::vector<MetricsRecord> read_metrics(const std::string& path) {
  std::vector<MetricsRecord> records;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) continue;
    records.push_back({.step = j["step"].get<int64_t>(),
                       .loss = number_field(j, "loss"),
                       .val_loss = number_field(j, "val_loss"),
                       .elapsed_s = number_field(j, "elapsed_s"),
                       .line = line});
  }
  return records;
}

Status MetricsLog::start_empty() { return write_file_atomic(path_, ""); }

Status MetricsLog::append(const nlohmann::json& line) {
  std::ofstream out(path_, std::ios::app);
  out << line.dump() << "\n";
  if (!out) return Status::io_error("{}: write failed", path_);
  return Status();
}

std::vector<MetricsRecord> MetricsLog::keep_through_step(int64_t step, bool rewrite, Status* status) {
  std::vector<MetricsRecord> kept;
  std::string text;
  for (MetricsRecord& record : read_metrics(path_)) {
    if (record.step > step) continue;
    text += record.line + "\n";
    kept.push_back(std::move(record));
  }
  *status = rewrite ? write_file_atomic(path_, text) : Status();
  return kept;
}

}  // namespace sc
