#include "launch/job_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

extern char** environ;

namespace sc {
namespace fs = std::filesystem;

namespace {
using Clock = std::chrono::steady_clock;

std::string env_name(const std::string& entry) { return entry.substr(0, entry.find('=')); }

// argv[0] as execve needs it: a path with a slash is used as given,
// otherwise the first executable of that name in PATH.
Result<std::string> resolve_program(const std::string& name) {
  if (name.empty()) return Status::invalid("empty command");
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) != 0) return Status::not_found("{}: not an executable file", name);
    return name;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = end > start ? dirs.substr(start, end - start) : ".";
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return Status::not_found("{}: not found in PATH", name);
}

// State, process group of /proc/<pid>/stat; false if the process is gone.
bool read_stat(pid_t pid, char* state, pid_t* pgrp) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return false;
  int ppid = 0, group = 0;
  if (std::sscanf(text.c_str() + close + 1, " %c %d %d", state, &ppid, &group) != 3) return false;
  *pgrp = group;
  return true;
}

bool environment_has(pid_t pid, const std::string& entry) {
  std::ifstream in(fmt::format("/proc/{}/environ", pid), std::ios::binary);
  if (!in) return false;
  std::string item;
  while (std::getline(in, item, '\0')) {
    if (item == entry) return true;
  }
  return false;
}

// Live (not zombie) processes in process group `pgid` or carrying `marker`.
std::vector<pid_t> find_job_processes(pid_t pgid, const std::string& marker) {
  std::vector<pid_t> found;
  const pid_t self = ::getpid();
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == self) continue;
    char state = 0;
    pid_t group = 0;
    if (!read_stat(pid, &state, &group) || state == 'Z' || state == 'X') continue;
    if ((pgid > 0 && group == pgid) || (!marker.empty() && environment_has(pid, marker))) found.push_back(pid);
  }
  return found;
}

void signal_all(pid_t pgid, const std::vector<pid_t>& pids, int sig) {
  if (pgid > 0) ::kill(-pgid, sig);
  for (pid_t pid : pids) ::kill(pid, sig);
}
}  // namespace

std::vector<pid_t> find_marked_processes(const std::string& marker) { return find_job_processes(0, marker); }

Result<JobProcess> JobProcess::start(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                                     const std::string& marker) {
  if (argv.empty()) return Status::invalid("launch: empty command");
  SC_ASSIGN_OR_RETURN(std::string program, resolve_program(argv[0]));

  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> env;
  std::vector<std::string> added = extra_env;
  added.push_back(marker);
  for (char** e = environ; *e; ++e) {
    const std::string entry(*e);
    bool overridden = false;
    for (const std::string& a : added) overridden = overridden || env_name(a) == env_name(entry);
    if (!overridden) env.push_back(entry);
  }
  env.insert(env.end(), added.begin(), added.end());
  std::vector<char*> argv_c, env_c;
  for (const std::string& a : argv) argv_c.push_back(const_cast<char*>(a.c_str()));
  argv_c.push_back(nullptr);
  for (const std::string& e : env) env_c.push_back(const_cast<char*>(e.c_str()));
  env_c.push_back(nullptr);
  const std::string exec_failed = "error: launch: cannot execute " + program + "\n";

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::io_error("launch: pipe failed: {}", std::strerror(errno));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return Status::io_error("/dev/null: cannot open: {}", std::strerror(errno));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    ::close(null_fd);
    return Status::io_error("launch: fork failed: {}", std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);  // its own group: the launcher signals the whole job at once
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    // Signal dispositions the launcher changed must not leak into the job.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::execve(program.c_str(), argv_c.data(), env_c.data());
    [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so the group exists before the parent signals it
  ::close(pipe_fds[1]);
  ::close(null_fd);
  ::fcntl(pipe_fds[0], F_SETFL, ::fcntl(pipe_fds[0], F_GETFL) | O_NONBLOCK);
  return JobProcess(pid, pipe_fds[0], marker);
}

JobProcess::JobProcess(JobProcess&& other) noexcept
    : pid_(other.pid_),
      output_fd_(other.output_fd_),
      marker_(std::move(other.marker_)),
      exited_(other.exited_),
      wait_status_(other.wait_status_) {
  other.pid_ = -1;
  other.output_fd_ = -1;
}

JobProcess::~JobProcess() {
  if (pid_ > 0 && !exited_) stop(0.5, [] {});
  close_output();
}

void JobProcess::close_output() {
  if (output_fd_ >= 0) ::close(output_fd_);
  output_fd_ = -1;
}

bool JobProcess::poll_exit() {
  if (exited_ || pid_ <= 0) return exited_;
  int status = 0;
  const pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    exited_ = true;
    wait_status_ = status;
  }
  return exited_;
}

bool JobProcess::any_alive() { return !find_job_processes(pid_, marker_).empty(); }

void JobProcess::stop(double grace_s, const std::function<void()>& pump) {
  if (pid_ <= 0) return;
  signal_all(pid_, find_job_processes(pid_, marker_), SIGTERM);
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(grace_s));
  while (Clock::now() < deadline) {
    pump();
    if (poll_exit() && !any_alive()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill_leftovers();
}

void JobProcess::kill_leftovers() {
  if (pid_ <= 0) return;
  // A few rounds: a process may fork between the scan and the kill.
  for (int round = 0; round < 3; ++round) {
    const std::vector<pid_t> alive = find_job_processes(pid_, marker_);
    if (alive.empty() && exited_) break;
    signal_all(pid_, alive, SIGKILL);
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      if (::waitpid(pid_, &status, 0) == pid_) {
        exited_ = true;
        wait_status_ = status;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace sc
