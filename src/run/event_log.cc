#include "run/event_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/json_reader.h"
#include "core/log.h"
#include "core/wall_clock.h"

namespace sc {

void EventLog::append(nlohmann::json event) const {
  if (path_.empty()) return;
  event["source"] = source_;
  event["time"] = unix_seconds_now();
  const std::string line = event.dump() + "\n";
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  if (fd >= 0) ok = (::fsync(fd) == 0) && ok;
  if (fd >= 0) ::close(fd);
  if (!ok) log_warn("{}: cannot append an event: {}", path_, std::strerror(errno));
}

std::vector<nlohmann::json> read_events(const std::string& path) {
  std::vector<nlohmann::json> events;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = parse_json(line, path);
    if (j.ok() && j->is_object()) events.push_back(std::move(*j));
  }
  return events;
}

}  // namespace sc
