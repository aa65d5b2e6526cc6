#include "launch/launch_args.h"

#include <charconv>
#include <cmath>
#include <optional>

namespace sc {
namespace {

std::optional<double> parse_number(const std::string& text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

Status expect(const std::string& flag, const std::string& what, const std::string& got) {
  return Status::invalid("launch: {} expects {}, got '{}'", flag, what, got);
}

Result<int> parse_count(const std::string& flag, const std::string& text, int min) {
  const std::optional<double> value = parse_number(text);
  if (!value || *value != std::floor(*value) || *value < min || *value > 1e9) {
    return expect(flag, min > 0 ? "a positive integer" : "a non-negative integer", text);
  }
  return static_cast<int>(*value);
}

Result<double> parse_seconds(const std::string& flag, const std::string& text) {
  const std::optional<double> value = parse_number(text);
  if (!value || *value < 0) return expect(flag, "a non-negative number of seconds", text);
  return *value;
}
}  // namespace

std::string find_out_dir(const std::vector<std::string>& train_args) {
  std::string out;
  for (size_t i = 0; i < train_args.size(); ++i) {
    if (train_args[i] == "--out" && i + 1 < train_args.size())
      out = train_args[++i];
    else if (train_args[i].starts_with("--out="))
      out = train_args[i].substr(6);
  }
  return out;
}

Result<LaunchRequest> parse_launch_args(const std::vector<std::string>& args) {
  LaunchRequest request;
  bool has_ranks = false;
  size_t i = 0;
  for (; i < args.size() && args[i] != "--"; ++i) {
    std::string flag = args[i], value;
    bool inline_value = false;
    if (const size_t eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      inline_value = true;
    }
    const bool known = flag == "-np" || flag == "--np" || flag == "-n" || flag == "--max-restarts" ||
                       flag == "--hang-timeout" || flag == "--backoff" || flag == "--backoff-max" ||
                       flag == "--kill-grace" || flag == "--mpirun-arg";
    if (!known) {
      return Status::invalid("launch: unknown option '{}' (train arguments go after '--'; see launch --help)", args[i]);
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) return Status::invalid("launch: {} needs a value", flag);
      value = args[++i];
    }
    if (flag == "-np" || flag == "--np" || flag == "-n") {
      SC_ASSIGN_OR_RETURN(request.ranks, parse_count(flag, value, 1));
      has_ranks = true;
    } else if (flag == "--max-restarts") {
      SC_ASSIGN_OR_RETURN(request.max_restarts, parse_count(flag, value, 0));
    } else if (flag == "--hang-timeout") {
      SC_ASSIGN_OR_RETURN(request.hang_timeout_s, parse_seconds(flag, value));
    } else if (flag == "--backoff") {
      SC_ASSIGN_OR_RETURN(request.backoff_s, parse_seconds(flag, value));
    } else if (flag == "--backoff-max") {
      SC_ASSIGN_OR_RETURN(request.backoff_max_s, parse_seconds(flag, value));
    } else if (flag == "--kill-grace") {
      SC_ASSIGN_OR_RETURN(request.kill_grace_s, parse_seconds(flag, value));
    } else {
      request.mpirun_args.push_back(value);
    }
  }
  if (!has_ranks) return Status::invalid("launch: -np N (the number of ranks) is required");
  if (i >= args.size() || i + 1 >= args.size() || args[i + 1] != "train") {
    return Status::invalid("launch: expected '-- train ARGS...' after the launch options");
  }
  request.train_args.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
  request.run_dir = find_out_dir(request.train_args);
  if (request.run_dir.empty()) {
    return Status::invalid(
        "launch: the train arguments need --out RUN: the run directory holds the checkpoints to restart from, "
        "heartbeat/ and events.jsonl");
  }
  return request;
}

std::vector<std::string> mpirun_command(const LaunchRequest& request, const std::string& binary) {
  std::vector<std::string> argv = {"mpirun", "-np", std::to_string(request.ranks)};
  argv.insert(argv.end(), request.mpirun_args.begin(), request.mpirun_args.end());
  argv.push_back(binary);
  argv.insert(argv.end(), request.train_args.begin(), request.train_args.end());
  return argv;
}

SupervisorOptions supervisor_options(const LaunchRequest& request, std::vector<std::string> command) {
  SupervisorOptions options;
  options.command = std::move(command);
  options.run_dir = request.run_dir;
  options.ranks = request.ranks;
  options.max_restarts = request.max_restarts;
  options.hang_timeout_s = request.hang_timeout_s;
  options.backoff_s = request.backoff_s;
  options.backoff_max_s = request.backoff_max_s;
  options.kill_grace_s = request.kill_grace_s;
  return options;
}

}  // namespace sc
