// supercluster: one binary, one subcommand per job.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/cpu_tuning.h"
#include "core/log.h"

int main(int argc, char** argv) {
  const std::string cpu_tuning = sc::tune_cpu_environment(argv);  // may re-execute
  CLI::App app{"supercluster: train, plan and serve Grok-style language models"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log debug detail");

  std::vector<std::pair<CLI::App*, sc::cli::CommandRunner>> commands;
  auto add = [&](CLI::App* (*adder)(CLI::App&, sc::cli::CommandRunner*)) {
    sc::cli::CommandRunner runner;
    CLI::App* sub = adder(app, &runner);
    commands.emplace_back(sub, std::move(runner));
  };
  add(sc::cli::add_prepare_command);
  add(sc::cli::add_train_command);
  add(sc::cli::add_generate_command);
  add(sc::cli::add_plan_command);
  add(sc::cli::add_launch_command);

  // `launch` parses its own words (mpirun's -np, then `-- train ...`).
  if (argc >= 2 && std::string(argv[1]) == "launch" &&
      !(argc == 3 && (std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h"))) {
    const sc::Status status = sc::cli::run_launch(std::vector<std::string>(argv + 2, argv + argc));
    if (!status.ok()) std::fprintf(stderr, "error: %s\n", status.message().c_str());
    return status.ok() ? 0 : 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (verbose) sc::set_log_level(sc::LogLevel::kDebug);
  sc::log_debug("{}", cpu_tuning);
  for (auto& [sub, runner] : commands) {
    if (!sub->parsed()) continue;
    sc::Status status = runner();
    if (!status.ok()) {
      std::fprintf(stderr, "error: %s\n", status.message().c_str());
      return 1;
    }
    return 0;
  }
  return 2;
}
