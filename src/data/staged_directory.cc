#include "data/staged_directory.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/file_util.h"
#include "core/log.h"

namespace sc {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kStagingTag = ".staging.";
constexpr std::string_view kAsideTag = ".previous.";

std::string errno_text() { return std::strerror(errno); }

// PARENT/.NAME<tag>PID
std::string sibling(const fs::path& out, std::string_view tag, long pid) {
  return (out.parent_path() / fmt::format(".{}{}{}", out.filename().string(), tag, pid)).string();
}

// The pid in a sibling's name ".NAME<tag>PID", or -1 when `entry` is not one.
long sibling_pid(std::string_view entry, const std::string& out_name, std::string_view tag) {
  const std::string prefix = fmt::format(".{}{}", out_name, tag);
  if (!entry.starts_with(prefix) || entry.size() == prefix.size()) return -1;
  std::string_view digits = entry.substr(prefix.size());
  long pid = -1;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
  if (ec != std::errc() || end != digits.data() + digits.size() || pid <= 0) return -1;
  return pid;
}

// A process that no longer exists cannot be writing its staging directory
// (one of another user is alive: kill answers EPERM).
bool process_is_gone(long pid) { return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

// Leftovers of runs that died: staging directories are removed; an output a
// run had moved aside (killed between its two renames) is put back.
void clean_up_after_dead_runs(const fs::path& out) {
  const std::string name = out.filename().string();
  std::error_code ec;
  for (fs::directory_iterator it(out.parent_path(), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string entry = it->path().filename().string();
    const long staging_pid = sibling_pid(entry, name, kStagingTag);
    const long aside_pid = sibling_pid(entry, name, kAsideTag);
    if (staging_pid > 0 && process_is_gone(staging_pid)) {
      std::error_code remove_ec;
      fs::remove_all(it->path(), remove_ec);
      if (remove_ec) {
        log_warn("{}: cannot remove the staging directory of a prepare that died: {}", it->path().string(),
                 remove_ec.message());
      } else {
        log_info("removed {}, left by a prepare that died", it->path().string());
      }
    } else if (aside_pid > 0 && process_is_gone(aside_pid)) {
      std::error_code exists_ec;
      if (!fs::exists(fs::symlink_status(out, exists_ec))) {
        if (::rename(it->path().c_str(), out.c_str()) == 0) {
          log_warn("{}: restored the previous output from {}, moved aside by a prepare that died", out.string(),
                   it->path().string());
        }
      } else {
        std::error_code remove_ec;
        fs::remove_all(it->path(), remove_ec);
      }
    }
  }
}

// The output as an absolute path with symbolic links resolved (so the
// directory replaced is the link's target) and no trailing separator.
Result<fs::path> resolve_output(const std::string& out_dir) {
  if (out_dir.empty()) return Status::invalid("--out is empty: expected a directory");
  std::error_code ec;
  fs::path out = fs::absolute(out_dir, ec);
  if (!ec) out = fs::weakly_canonical(out, ec);
  if (ec) return Status::invalid("{}: cannot resolve the output directory: {}", out_dir, ec.message());
  if (!out.has_filename()) out = out.parent_path();
  if (!out.has_filename() || out == out.root_path()) {
    return Status::invalid("{}: cannot replace the root directory; give prepare a directory of its own", out_dir);
  }
  return out;
}

}  // namespace

Result<StagedDirectory> StagedDirectory::create(const std::string& out_dir,
                                                const std::function<bool(std::string_view name)>& replaceable) {
  SC_ASSIGN_OR_RETURN(fs::path out, resolve_output(out_dir));
  clean_up_after_dead_runs(out);
  std::error_code ec;
  const fs::file_status st = fs::status(out, ec);
  const bool out_exists = fs::exists(st);
  if (ec && !out_exists && ec != std::errc::no_such_file_or_directory) {
    return Status::io_error("{}: cannot inspect the output directory: {}", out_dir, ec.message());
  }
  if (out_exists) {
    if (!fs::is_directory(st)) return Status::invalid("{}: exists and is not a directory", out_dir);
    // The whole directory is replaced: whatever prepare did not write would be lost.
    for (fs::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!replaceable(name)) {
        return Status::invalid(
            "{}: holds '{}', which prepare did not write; prepare replaces its output directory as a whole, so give "
            "it a new or empty directory (or one it wrote before)",
            out_dir, name);
      }
    }
    if (ec) return Status::io_error("{}: cannot list the output directory: {}", out_dir, ec.message());
  } else {
    fs::create_directories(out.parent_path(), ec);
    if (ec) return Status::io_error("{}: cannot create the output directory's parent: {}", out_dir, ec.message());
  }

  const std::string staging = sibling(out, kStagingTag, static_cast<long>(::getpid()));
  fs::remove_all(staging, ec);  // a leftover of a dead process that had our pid
  if (::mkdir(staging.c_str(), 0777) != 0) {
    return Status::io_error("{}: cannot create the staging directory {} beside it (prepare writes there and swaps "
                            "it in whole): {}",
                            out_dir, staging, errno_text());
  }
  StagedDirectory staged(out.string(), staging);
  if (out_exists) {
    struct stat out_stat {}, staging_stat {};
    if (::stat(out.c_str(), &out_stat) != 0 || ::stat(staging.c_str(), &staging_stat) != 0) {
      return Status::io_error("{}: cannot stat: {}", out_dir, errno_text());
    }
    if (out_stat.st_dev != staging_stat.st_dev) {
      return Status::invalid("{}: is a mount point; prepare replaces its output directory as a whole, so give it a "
                             "directory inside",
                             out_dir);
    }
    ::chmod(staging.c_str(), out_stat.st_mode & 07777);  // the output keeps its permissions
  }
  return staged;
}

StagedDirectory::StagedDirectory(StagedDirectory&& other) noexcept
    : out_(std::move(other.out_)), staging_(std::move(other.staging_)) {
  other.staging_.clear();
}

StagedDirectory::~StagedDirectory() {
  if (staging_.empty()) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

Result<bool> exchange_directories(const std::string& staged, const std::string& out) {
  if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) == 0) return true;
  if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) return false;
  return Status::io_error("{}: cannot exchange with {}: {}", out, staged, errno_text());
}

Status replace_directory_by_renames(const std::string& staged, const std::string& out, const std::string& aside) {
  if (::rename(out.c_str(), aside.c_str()) != 0) {
    return Status::io_error("{}: cannot move the previous output aside to {}: {}", out, aside, errno_text());
  }
  if (::rename(staged.c_str(), out.c_str()) != 0) {
    const Status failed = Status::io_error("{}: cannot rename {} into place: {}", out, staged, errno_text());
    ::rename(aside.c_str(), out.c_str());
    return failed;
  }
  return Status();
}

Status StagedDirectory::commit() {
  if (staging_.empty()) return Status::internal("{}: commit of a staged directory already committed", out_);
  SC_RETURN_IF_ERROR(fsync_directory(staging_));
  const fs::path out(out_);
  std::string previous;  // where the previous output ends up, to be removed
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(out, ec))) {
    if (::rename(staging_.c_str(), out_.c_str()) != 0) {
      return Status::io_error("{}: cannot rename {} into place: {}", out_, staging_, errno_text());
    }
  } else {
    SC_ASSIGN_OR_RETURN(bool exchanged, exchange_directories(staging_, out_));
    if (exchanged) {
      previous = staging_;
    } else {
      previous = sibling(out, kAsideTag, static_cast<long>(::getpid()));
      SC_RETURN_IF_ERROR(replace_directory_by_renames(staging_, out_, previous));
    }
  }
  staging_.clear();  // the new output is in place: nothing of ours to remove on destruction but `previous`
  SC_RETURN_IF_ERROR(fsync_directory(out.parent_path().string()));
  if (!previous.empty()) {
    fs::remove_all(previous, ec);
    if (ec) log_warn("{}: cannot remove the previous output: {}", previous, ec.message());
  }
  return Status();
}

}  // namespace sc
