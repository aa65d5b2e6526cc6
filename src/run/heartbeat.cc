#include "run/heartbeat.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "core/json_reader.h"
#include "core/log.h"
#include "core/wall_clock.h"

namespace sc {
namespace fs = std::filesystem;

namespace {
std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

bool is_heartbeat_name(const std::string& name) { return name.starts_with("rank-") && name.ends_with(".json"); }
}  // namespace

const char* heartbeat_phase_name(HeartbeatPhase phase) {
  switch (phase) {
    case HeartbeatPhase::kSetup: return "setup";
    case HeartbeatPhase::kTrain: return "train";
    case HeartbeatPhase::kEval: return "eval";
    case HeartbeatPhase::kCheckpoint: return "checkpoint";
    case HeartbeatPhase::kCollective: return "collective";
    case HeartbeatPhase::kDone: return "done";
  }
  return "unknown";
}

HeartbeatWriter::HeartbeatWriter(std::string dir, int rank)
    : dir_(std::move(dir)),
      path_((fs::path(dir_) / fmt::format("rank-{}.json", rank)).string()),
      temp_path_((fs::path(dir_) / fmt::format(".rank-{}.json.tmp", rank)).string()),
      host_(host_name()),
      rank_(rank) {}

HeartbeatWriter HeartbeatWriter::from_env(int rank) {
  const char* dir = std::getenv(kHeartbeatDirEnvVar);
  if (!dir || !*dir) return HeartbeatWriter();
  return HeartbeatWriter(dir, rank);
}

void HeartbeatWriter::beat(int64_t step, HeartbeatPhase phase) {
  if (!enabled()) return;
  if (!dir_ready_) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    dir_ready_ = !ec;
  }
  const nlohmann::json beat = {{"rank", rank_}, {"pid", static_cast<int64_t>(::getpid())}, {"host", host_},
                               {"step", step},  {"phase", heartbeat_phase_name(phase)},    {"time", unix_seconds_now()}};
  const std::string text = beat.dump() + "\n";
  // A plain write + rename: a few microseconds, cheap enough for every step.
  bool ok = false;
  const int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ok = (::close(fd) == 0) && ok;
    ok = ok && ::rename(temp_path_.c_str(), path_.c_str()) == 0;
  }
  if (!ok && !warned_) {
    warned_ = true;
    log_warn("heartbeat: cannot write {}: {} (the launcher may take this rank for hung)", path_, std::strerror(errno));
  }
}

std::vector<Heartbeat> read_heartbeats(const std::string& dir) {
  std::vector<Heartbeat> beats;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!is_heartbeat_name(name)) continue;
    auto text = read_file(it->path().string());
    if (!text.ok()) continue;  // replaced or removed between listing and reading
    // Anything that is not a heartbeat of ours is passed over: the next poll
    // sees the next beat.
    auto parsed = parse_json(*text, it->path().string());
    if (!parsed.ok()) continue;
    auto j = JsonReader::of(*parsed, it->path().string());
    if (!j.ok()) continue;
    auto rank = j->integer("rank", 0, std::numeric_limits<int>::max());
    auto step = j->integer("step", 0);
    auto pid = j->integer_or("pid", 0, 0);
    auto host = j->string_or("host", "", 256);
    auto phase = j->string_or("phase", "", 64);
    auto time = j->number_or("time", 0.0);
    if (!rank.ok() || !step.ok() || !pid.ok() || !host.ok() || !phase.ok() || !time.ok()) continue;
    beats.push_back({.rank = static_cast<int>(*rank), .pid = *pid, .host = *host, .step = *step, .phase = *phase,
                     .time = *time});
  }
  std::sort(beats.begin(), beats.end(), [](const Heartbeat& a, const Heartbeat& b) { return a.rank < b.rank; });
  return beats;
}

Status clear_heartbeats(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error("{}: cannot create heartbeat directory: {}", dir, ec.message());
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_heartbeat_name(name) || (name.starts_with(".rank-") && name.ends_with(".tmp"))) {
      std::error_code remove_ec;
      fs::remove(it->path(), remove_ec);
      if (remove_ec) return Status::io_error("{}: cannot remove: {}", it->path().string(), remove_ec.message());
    }
  }
  if (ec) return Status::io_error("{}: cannot list: {}", dir, ec.message());
  return Status();
}

}  // namespace sc
