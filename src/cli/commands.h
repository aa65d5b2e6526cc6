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

using CommandRunner = std::function<Status()>;

CLI::App* add_prepare_command(CLI::App& root, CommandRunner* runner);
CLI::App* add_train_command(CLI::App& root, CommandRunner* runner);
CLI::App* add_generate_command(CLI::App& root, CommandRunner* runner);
CLI::App* add_plan_command(CLI::App& root, CommandRunner* runner);
CLI::App* add_launch_command(CLI::App& root, CommandRunner* runner);
// `supercluster launch ARGS`: main() hands the words after "launch" straight
// here, since CLI11 would take a leading `--` as its own end of options.
Status run_launch(const std::vector<std::string>& args);


}  // namespace sc::cli
