// The command line as a whole: every subcommand's flags on one CLI11 app,
// parsed, checked and run. main() is run_main(); the flag fuzzer
// (fuzz/cli_flags_fuzzer.cc) calls parse_and_check(), which runs nothing.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace sc::cli {

// The whole program after CPU tuning (`cpu_tuning` says what was set, logged
// with --verbose): parse, check, run. Bad flags print
// CLI11's message or "error: ..." and return 1; an exception that escapes a
// command is a bug, reported as one line "error: COMMAND: internal error:
// WHAT" with exit 1 (kInternalErrorMarker lets tests and fuzzers spot it).
int run_main(int argc, char** argv, const std::string& cpu_tuning);

inline constexpr const char* kInternalErrorMarker = "internal error: ";

// Parses `args` (the words after the program name) and runs the parsed
// subcommand's flag check; runs no command and touches no file. OK for
// --help. A parse error or failed check is returned as an error.
Status parse_and_check(const std::vector<std::string>& args);

}  // namespace sc::cli
