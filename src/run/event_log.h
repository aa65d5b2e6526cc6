// RUN/events.jsonl: what happened to a run, one JSON object per line, from
// the trainer (checkpoints, skipped steps, rollbacks) and the launcher
// (attempts, failures, restarts, a summary), each line with "event",
// "source" and "time" (unix seconds). docs/fault_tolerance.md lists them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sc {

class EventLog {
 public:
  EventLog() = default;  // disabled: append() does nothing
  EventLog(std::string path, std::string source) : path_(std::move(path)), source_(std::move(source)) {}
  // Appends and fsyncs one line: the record of a run's failures must survive
  // the writer's own crash. Never fails the caller (a warning instead).
  void append(nlohmann::json event) const;

 private:
  std::string path_;
  std::string source_;
};

// Every line of `path` that is a JSON object, in order; a missing file is empty.
std::vector<nlohmann::json> read_events(const std::string& path);

}  // namespace sc
