#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/executable_path.h"
#include "launch/launch_args.h"
#include "launch/supervisor.h"

namespace sc::cli {
namespace {
std::atomic<bool> g_stop_requested{false};

extern "C" void request_stop(int) { g_stop_requested.store(true); }
}  // namespace

CLI::App* add_launch_command(CLI::App& root, CommandRunner* runner) {
  CLI::App* sub = root.add_subcommand(
      "launch",
      "Run `train` on N ranks through mpirun, restarting it from the newest checkpoint when a rank dies or hangs");
  // Everything after `launch` is ours to parse: CLI11 has no `-np`.
  sub->prefix_command();
  sub->allow_extras();
  sub->footer(std::string(kLaunchUsage) +
              "\n\n  -np N             ranks (mpirun -np)\n"
              "  --max-restarts R  restarts at most (default 3)\n"
              "  --hang-timeout S  a rank whose heartbeat stops changing this long is hung (default 300; 0 off)\n"
              "  --backoff S       delay before a restart, doubling per failure in a row without progress (default 5)\n"
              "  --backoff-max S   cap of that delay (default 60)\n"
              "  --kill-grace S    SIGTERM, then SIGKILL after S seconds (default 5)\n"
              "  --mpirun-arg ARG  passed to mpirun before the program (repeat for each word)\n"
              "See docs/fault_tolerance.md.");
  runner->check = [sub]() { return check_launch(sub->remaining()); };
  runner->run = [sub]() { return run_launch(sub->remaining()); };
  return sub;
}

Status check_launch(const std::vector<std::string>& args) {
  SC_ASSIGN_OR_RETURN(const LaunchRequest request, parse_launch_args(args));
  if (request.train_args.empty() || request.train_args[0] != "train") return Status();
  const Status train = parse_and_check(request.train_args);
  return train.ok() ? train : Status::invalid("launch: {}", train.message());
}

Status run_launch(const std::vector<std::string>& args) {
  SC_ASSIGN_OR_RETURN(LaunchRequest request, parse_launch_args(args));
  // The ranks run this binary too.
  SC_ASSIGN_OR_RETURN(std::string binary, executable_path());
  SupervisorOptions options = supervisor_options(request, mpirun_command(request, binary));
  options.stop_requested = &g_stop_requested;
  struct sigaction action {};
  action.sa_handler = request_stop;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &action, nullptr);

  LaunchSummary summary = Supervisor(options).run();
  std::fprintf(stderr, "%s\n", format_launch_summary(summary).c_str());
  return summary.status;
}

}  // namespace sc::cli
