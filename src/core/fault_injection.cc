#include "core/fault_injection.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/file_util.h"
#include "core/log.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

constexpr const char* kExpected =
    "expected KIND[:rank=R]:step=S with KIND one of kill, hang, nan, checkpoint_crash, throw, entries separated by commas";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char separator) {
  std::vector<std::string_view> parts;
  for (;;) {
    const size_t at = s.find(separator);
    parts.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return parts;
    s.remove_prefix(at + 1);
  }
}

std::optional<FaultKind> parse_kind(std::string_view name) {
  for (FaultKind kind :
       {FaultKind::kKill, FaultKind::kHang, FaultKind::kNan, FaultKind::kCheckpointCrash, FaultKind::kThrow}) {
    if (name == fault_kind_name(kind)) return kind;
  }
  return std::nullopt;
}

std::optional<int64_t> parse_int(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

Result<FaultSpec> parse_entry(std::string_view entry, int index) {
  auto fail = [&](const std::string& what) {
    return Status::invalid("{}: entry '{}': {} ({})", kFaultsEnvVar, entry, what, kExpected);
  };
  const std::vector<std::string_view> fields = split(entry, ':');
  FaultSpec spec;
  spec.index = index;
  const std::optional<FaultKind> kind = parse_kind(trim(fields[0]));
  if (!kind) return fail(fmt::format("unknown fault kind '{}'", trim(fields[0])));
  spec.kind = *kind;
  bool has_step = false;
  for (size_t i = 1; i < fields.size(); ++i) {
    const std::string_view field = trim(fields[i]);
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) return fail(fmt::format("'{}' is not key=value", field));
    const std::string_view key = trim(field.substr(0, eq));
    const std::string_view value = trim(field.substr(eq + 1));
    const std::optional<int64_t> number = parse_int(value);
    if (key == "rank") {
      if (spec.rank) return fail("rank given twice");
      if (!number || *number < 0 || *number > 1'000'000'000) {
        return fail(fmt::format("rank must be a non-negative integer, got '{}'", value));
      }
      spec.rank = static_cast<int>(*number);
    } else if (key == "step") {
      if (has_step) return fail("step given twice");
      if (!number || *number < 1) return fail(fmt::format("step must be an integer >= 1, got '{}'", value));
      spec.step = *number;
      has_step = true;
    } else {
      return fail(fmt::format("unknown key '{}' (keys are rank and step)", key));
    }
  }
  if (!has_step) return fail("step is missing");
  return spec;
}

[[noreturn]] void kill_self() {
  std::fflush(nullptr);
  std::raise(SIGKILL);
  std::abort();  // not reached: SIGKILL cannot be caught
}

[[noreturn]] void hang_forever() {
  std::fflush(nullptr);
  for (;;) ::sleep(3600);  // SIGTERM / SIGKILL from the launcher still end it
}
}  // namespace

const char* fault_kind_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKill: return "kill";
    case FaultKind::kHang: return "hang";
    case FaultKind::kNan: return "nan";
    case FaultKind::kCheckpointCrash: return "checkpoint_crash";
    case FaultKind::kThrow: return "throw";
  }
  return "unknown";
}

Result<std::vector<FaultSpec>> parse_fault_specs(std::string_view text) {
  std::vector<FaultSpec> specs;
  if (trim(text).empty()) return specs;
  const std::vector<std::string_view> entries = split(text, ',');
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string_view entry = trim(entries[i]);
    if (entry.empty()) {
      return Status::invalid("{}: entry {} of '{}' is empty ({})", kFaultsEnvVar, i + 1, text, kExpected);
    }
    SC_ASSIGN_OR_RETURN(FaultSpec spec, parse_entry(entry, static_cast<int>(i)));
    specs.push_back(spec);
  }
  return specs;
}

Result<FaultInjector> FaultInjector::from_env(const std::string& run_dir, int rank) {
  const char* spec = std::getenv(kFaultsEnvVar);
  return from_spec(spec ? spec : "", run_dir, rank);
}

Result<FaultInjector> FaultInjector::from_spec(std::string_view spec, const std::string& run_dir, int rank) {
  SC_ASSIGN_OR_RETURN(std::vector<FaultSpec> all, parse_fault_specs(spec));
  FaultInjector injector;
  injector.run_dir_ = run_dir;
  injector.rank_ = rank;
  for (const FaultSpec& fault : all) {
    if (!fault.rank || *fault.rank == rank) injector.faults_.push_back(fault);
  }
  injector.done_.assign(injector.faults_.size(), false);
  return injector;
}

std::string FaultInjector::marker_path(const FaultSpec& fault) const {
  return (fs::path(run_dir_) / "faults" /
          fmt::format("{}-{}-rank{}-step{}.fired", fault.index, fault_kind_name(fault.kind), rank_, fault.step))
      .string();
}

bool FaultInjector::claim(const FaultSpec& fault) {
  const std::string path = marker_path(fault);
  const std::string dir = fs::path(path).parent_path().string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    // Firing without a durable marker could kill every restart of the job
    // at the same step, so a fault that cannot be recorded does not fire.
    if (errno != EEXIST) log_warn("fault injection: cannot create {}: {}; fault not fired", path, std::strerror(errno));
    return false;
  }
  const std::string note = fmt::format("pid {}\n", ::getpid());
  const bool written = ::write(fd, note.data(), note.size()) == static_cast<ssize_t>(note.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!written || !fsync_directory(dir).ok() || !fsync_directory(run_dir_.empty() ? "." : run_dir_).ok()) {
    log_warn("fault injection: cannot make {} durable; fault not fired", path);
    return false;
  }
  return true;
}

const FaultSpec* FaultInjector::due(FaultKind kind, int64_t step) const {
  for (size_t i = 0; i < faults_.size(); ++i) {
    if (!done_[i] && faults_[i].kind == kind && faults_[i].step == step) return &faults_[i];
  }
  return nullptr;
}

void FaultInjector::at_step_start(int64_t step) {
  if (faults_.empty()) return;
  std::unique_lock lock(*mutex_);
  for (size_t i = 0; i < faults_.size(); ++i) {
    const FaultSpec& fault = faults_[i];
    const bool at_start = fault.kind == FaultKind::kKill || fault.kind == FaultKind::kHang || fault.kind == FaultKind::kThrow;
    if (done_[i] || fault.step != step || !at_start) continue;
    done_[i] = true;
    if (!claim(fault)) continue;
    lock.unlock();
    if (fault.kind == FaultKind::kKill) {
      log_warn("fault injection: killing rank {} at step {}", rank_, step);
      kill_self();
    }
    if (fault.kind == FaultKind::kThrow) {
      log_warn("fault injection: throwing on rank {} at step {}", rank_, step);
      throw std::runtime_error(fmt::format("exception injected on rank {} at step {}", rank_, step));
    }
    log_warn("fault injection: hanging rank {} at step {}", rank_, step);
    hang_forever();
  }
}

bool FaultInjector::poison_now(int64_t step) {
  if (faults_.empty()) return false;
  std::lock_guard lock(*mutex_);
  while (const FaultSpec* fault = due(FaultKind::kNan, step)) {
    done_[static_cast<size_t>(fault - faults_.data())] = true;
    if (!claim(*fault)) continue;
    log_warn("fault injection: poisoning the loss of rank {} at step {} with NaN", rank_, step);
    return true;
  }
  return false;
}

void FaultInjector::in_checkpoint_write(int64_t step) {
  if (faults_.empty()) return;
  std::unique_lock lock(*mutex_);
  while (const FaultSpec* fault = due(FaultKind::kCheckpointCrash, step)) {
    done_[static_cast<size_t>(fault - faults_.data())] = true;
    if (!claim(*fault)) continue;
    lock.unlock();
    log_warn("fault injection: killing rank {} while it writes the checkpoint of step {}", rank_, step);
    kill_self();
  }
}

}  // namespace sc
