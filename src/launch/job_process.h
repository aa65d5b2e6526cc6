// One attempt of a supervised job as a process tree the launcher can always
// stop: the child (mpirun) runs in its own process group with its stdout and
// stderr on one pipe, and carries an environment marker that its descendants
// inherit. The marker matters because mpirun puts every rank in a process
// group of its own, and a rank that outlives a killed mpirun is reparented
// away: the launcher finds such processes by their marker in /proc.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sc {

class JobProcess {
 public:
  // Starts `argv` (argv[0] looked up in PATH) with the launcher's environment
  // plus `extra_env` ("NAME=value" entries, which win) and `marker`
  // ("NAME=value", unique to this attempt). stdin is /dev/null.
  static Result<JobProcess> start(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                                  const std::string& marker);
  JobProcess(JobProcess&& other) noexcept;
  JobProcess& operator=(JobProcess&&) = delete;
  JobProcess(const JobProcess&) = delete;
  ~JobProcess();  // stops a job still running and closes the pipe

  pid_t pid() const { return pid_; }
  // Read end of the output pipe (non-blocking); -1 once closed.
  int output_fd() const { return output_fd_; }
  void close_output();

  // Non-blocking: true once the child has exited (it is then reaped).
  bool poll_exit();
  bool exited() const { return exited_; }
  int wait_status() const { return wait_status_; }  // as from waitpid

  // Stops the whole tree: SIGTERM to the process group and every marked
  // process, then, after `grace_s` or once all are gone, SIGKILL to whatever
  // is left. `pump` runs between checks so the caller can keep draining the
  // output pipe (a child blocked on a full pipe cannot exit).
  void stop(double grace_s, const std::function<void()>& pump);
  // SIGKILL to processes of the job that outlived the child (group members
  // and marked processes). Call after the child exits.
  void kill_leftovers();

 private:
  JobProcess(pid_t pid, int output_fd, std::string marker)
      : pid_(pid), output_fd_(output_fd), marker_(std::move(marker)) {}
  bool any_alive();
  pid_t pid_ = -1;
  int output_fd_ = -1;
  std::string marker_;
  bool exited_ = false;
  int wait_status_ = 0;
};

// Processes (other than this one) whose initial environment holds the entry
// `marker` exactly ("NAME=value"), found through /proc/<pid>/environ.
std::vector<pid_t> find_marked_processes(const std::string& marker);

}  // namespace sc
