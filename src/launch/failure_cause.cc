#include "launch/failure_cause.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <cstring>
#include <regex>

namespace sc {
namespace {
constexpr size_t kLastLinesKept = 20;

// Digits a pattern matched, as an int; past int's range (a garbled line) is no number.
std::optional<int> to_int(const std::ssub_match& match) {
  const std::string text = match.str();
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}
constexpr size_t kLinesInFallbackMessage = 3;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::strchr(" \t\r\n", s.front())) s.remove_prefix(1);
  while (!s.empty() && std::strchr(" \t\r\n", s.back())) s.remove_suffix(1);
  return s;
}

bool is_rule(std::string_view line) { return line.find_first_not_of('-') == std::string_view::npos; }

// Regexes run only on lines a cheap substring test picked out: a few per
// failure, never per progress line.
bool search(const std::string& line, const std::regex& re, std::smatch* match) {
  return std::regex_search(line, *match, re);
}

std::string signal_description(int signal) {
  const char* description = ::strsignal(signal);
  return description ? description : "unknown";
}
}  // namespace

std::string signal_name(int signal) { return fmt::format("signal {} ({})", signal, signal_description(signal)); }

void FailureLineParser::add_line(std::string_view raw) {
  const std::string_view trimmed = trim(raw);
  if (trimmed.empty()) return;
  const std::string line(trimmed);
  // mpirun frames its reports between rules of dashes; what is outside is
  // the job's own output, the likelier explanation of a failure.
  if (is_rule(line)) {
    in_mpirun_box_ = !in_mpirun_box_;
  } else if (!in_mpirun_box_ && std::find(job_lines_.begin(), job_lines_.end(), line) == job_lines_.end()) {
    job_lines_.push_back(line);
    if (job_lines_.size() > kLastLinesKept) job_lines_.pop_front();
  }
  std::smatch m;
  if (!signal_report_ && line.find("exited on signal") != std::string::npos) {
    static const std::regex re(
        R"(process rank (\d+) with PID \d+ on node (\S+) exited on signal (\d+)(?: \(([^)]*)\))?)");
    if (search(line, re, &m)) {
      SignalReport report;
      report.rank = to_int(m[1]).value_or(-1);
      report.signal = to_int(m[3]).value_or(-1);
      const std::string name = m[4].matched ? m[4].str() : signal_description(report.signal);
      report.text =
          fmt::format("rank {} exited on signal {} ({}) on node {}", report.rank, report.signal, name, m[2].str());
      signal_report_ = report;
    }
  }
  if (line.starts_with("error: ")) {
    static const std::regex re(R"(^error: (rank (\d+) of \d+: .*)$)");
    if (search(line, re, &m)) {
      if (!rank_error_) rank_error_ = std::make_pair(to_int(m[2]).value_or(-1), m[1].str());
    } else if (!plain_error_) {
      plain_error_ = line.substr(std::strlen("error: "));
    }
  }
  if (!abort_rank_ && line.find("MPI_ABORT was invoked on rank") != std::string::npos) {
    static const std::regex re(R"(MPI_ABORT was invoked on rank (\d+))");
    if (search(line, re, &m)) abort_rank_ = to_int(m[1]).value_or(-1);
  }
  if (!process_rank_ && line.find("Process name:") != std::string::npos) {
    static const std::regex re(R"(Process name:\s*\[\[\d+,\d+\],(\d+)\])");
    if (search(line, re, &m)) process_rank_ = to_int(m[1]).value_or(-1);
  }
  if (!process_exit_code_ && line.starts_with("Exit code:")) {
    static const std::regex re(R"(^Exit code:\s*(-?\d+))");
    if (search(line, re, &m)) process_exit_code_ = to_int(m[1]).value_or(-1);
  }
}

FailureCause FailureLineParser::cause() const {
  FailureCause cause;
  if (signal_report_) {
    cause.rank = signal_report_->rank;
    cause.signal = signal_report_->signal;
    cause.message = signal_report_->text;
    cause.recognized = true;
    return cause;
  }
  cause.exit_code = process_exit_code_;
  if (rank_error_) {
    cause.rank = rank_error_->first;
    cause.message = rank_error_->second;
    cause.recognized = true;
    return cause;
  }
  cause.rank = process_rank_ ? process_rank_ : abort_rank_;
  std::string last_output;
  const size_t from = job_lines_.size() > kLinesInFallbackMessage ? job_lines_.size() - kLinesInFallbackMessage : 0;
  for (size_t i = from; i < job_lines_.size(); ++i) {
    if (!last_output.empty()) last_output += " | ";
    last_output += job_lines_[i];
  }
  if (plain_error_) {
    cause.message = *plain_error_;
    cause.recognized = true;
  } else if (cause.rank && process_exit_code_) {
    cause.message = fmt::format("rank {} exited with code {}", *cause.rank, *process_exit_code_);
    if (!last_output.empty()) cause.message += fmt::format("; last output: {}", last_output);
    cause.recognized = true;
  } else {
    cause.message = last_output;
  }
  return cause;
}

}  // namespace sc
