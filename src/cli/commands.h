// Each subcommand registers its flags on the root app and returns the
// function that runs it once parsed. Commands are thin: they turn flags into
// an options struct, call the library, and print what a person reads.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sc::cli {

// What a parsed subcommand does. `check` looks at the flags alone (their
// text, finiteness and ranges) and touches no file, so the flag fuzzer can
// call it on any command line; `run` is called only after `check` passed.
struct CommandRunner {
  std::function<Status()> check = [] { return Status(); };
  std::function<Status()> run;
};

CLI::App* add_prepare_command(CLI::App& root, CommandRunner* runner);
CLI::App* add_train_command(CLI::App& root, CommandRunner* runner);
CLI::App* add_generate_command(CLI::App& root, CommandRunner* runner);
CLI::App* add_serve_command(CLI::App& root, CommandRunner* runner);
CLI::App* add_plan_command(CLI::App& root, CommandRunner* runner);
CLI::App* add_launch_command(CLI::App& root, CommandRunner* runner);
// `supercluster launch ARGS`: main() hands the words after "launch" straight
// here, since CLI11 would take a leading `--` as its own end of options.
// check_launch() is its flag check: launch's own words, and the train command
// it will run checked as `train` checks it, so a typo fails at once rather
// than on every rank after mpirun has started them.
Status check_launch(const std::vector<std::string>& args);
Status run_launch(const std::vector<std::string>& args);

}  // namespace sc::cli
