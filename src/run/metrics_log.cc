#include "run/metrics_log.h"

#include <fstream>

#include "core/file_util.h"
#include "core/json_reader.h"

namespace sc {

namespace {
// A field that is a finite number; absent, null or anything else is no value.
std::optional<double> optional_number(const JsonReader& j, const char* key) {
  auto value = j.number(key);
  return value.ok() ? std::optional<double>(*value) : std::nullopt;
}
}  // namespace

std::vector<MetricsRecord> read_metrics(const std::string& path) {
  std::vector<MetricsRecord> records;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto parsed = parse_json(line, path);
    if (!parsed.ok()) continue;
    auto j = JsonReader::of(*parsed, path);
    if (!j.ok()) continue;
    auto step = j->integer("step");
    if (!step.ok()) continue;
    records.push_back({.step = *step,
                       .loss = optional_number(*j, "loss"),
                       .val_loss = optional_number(*j, "val_loss"),
                       .elapsed_s = optional_number(*j, "elapsed_s"),
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
