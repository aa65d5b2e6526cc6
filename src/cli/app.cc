#include "cli/app.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "core/json_reader.h"
#include "core/log.h"

namespace sc::cli {
namespace {

struct App {
  CLI::App root{"supercluster: train, plan and serve Grok-style language models"};
  bool verbose = false;
  std::vector<std::pair<CLI::App*, CommandRunner>> commands;

  App() {
    root.require_subcommand(1);
    root.add_flag("-v,--verbose", verbose, "Log debug detail");
    for (auto adder : {add_prepare_command, add_train_command, add_generate_command, add_serve_command, add_plan_command,
                       add_launch_command}) {
      CommandRunner runner;
      CLI::App* sub = adder(root, &runner);
      commands.emplace_back(sub, std::move(runner));
    }
  }
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  const CommandRunner* parsed() const {
    for (const auto& [sub, runner] : commands) {
      if (sub->parsed()) return &runner;
    }
    return nullptr;
  }
};

// `launch` parses its own words (mpirun's -np, then `-- train ...`): CLI11
// would take a leading `--` as its own end of options.
bool is_launch(const std::vector<std::string>& args) {
  return !args.empty() && args[0] == "launch" && !(args.size() == 2 && (args[1] == "--help" || args[1] == "-h"));
}

// Parses `args` and runs the parsed command's flag check; runs nothing.
Status check_args(const std::vector<std::string>& args) {
  if (is_launch(args)) return check_launch({args.begin() + 1, args.end()});
  App app;
  std::vector<std::string> words(args.rbegin(), args.rend());  // CLI11 takes them last first
  try {
    app.root.parse(words);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return Status();  // --help
    return Status::invalid("{}", text_excerpt(e.what(), 400));
  }
  const CommandRunner* command = app.parsed();
  return command == nullptr ? Status::invalid("no command") : command->check();
}

int exit_code(const Status& status) {
  if (status.ok()) return 0;
  std::fprintf(stderr, "error: %s\n", status.message().c_str());
  return 1;
}

int parse_check_run(int argc, char** argv, const std::string& cpu_tuning) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (is_launch(args)) {
    const std::vector<std::string> launch_args(args.begin() + 1, args.end());
    if (const Status checked = check_launch(launch_args); !checked.ok()) return exit_code(checked);
    return exit_code(run_launch(launch_args));
  }
  App app;
  try {
    app.root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message (or the help); a bad command line exits 1
    // like every other bad input.
    return app.root.exit(e) == 0 ? 0 : 1;
  }
  if (app.verbose) set_log_level(LogLevel::kDebug);
  log_debug("{}", cpu_tuning);
  const CommandRunner* command = app.parsed();
  if (command == nullptr) return 1;  // require_subcommand(1) makes this unreachable
  if (const Status checked = command->check(); !checked.ok()) return exit_code(checked);
  return exit_code(command->run());
}

}  // namespace

int run_main(int argc, char** argv, const std::string& cpu_tuning) {
  const std::string command = argc >= 2 ? text_excerpt(argv[1], 64) : "supercluster";
  try {
    return parse_check_run(argc, argv, cpu_tuning);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s: %s%s\n", command.c_str(), kInternalErrorMarker, text_excerpt(e.what(), 400).c_str());
  } catch (...) {
    std::fprintf(stderr, "error: %s: %sunknown exception\n", command.c_str(), kInternalErrorMarker);
  }
  return 1;
}

Status parse_and_check(const std::vector<std::string>& args) { return check_args(args); }

}  // namespace sc::cli
