// Helpers shared by the tests: scratch directories, files, running the binary.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace sc::testing {

// A fresh directory, removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sc_test_XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

inline void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing its output. Output with main()'s
// "internal error: " line (an exception escaped a command: a bug, see
// src/cli/app.h) fails the calling test unless the test injected it.
inline CommandResult run_command(const std::string& command_line, bool internal_error_expected = false) {
  CommandResult result;
  FILE* pipe = ::popen((command_line + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (!internal_error_expected && result.output.find(": internal error: ") != std::string::npos) {
    ADD_FAILURE() << "an exception escaped a command (a bug) in: " << command_line << "\n" << result.output;
  }
  return result;
}

#ifdef SUPERCLUSTER_BINARY
inline CommandResult run_supercluster(const std::string& args) {
  return run_command(std::string(SUPERCLUSTER_BINARY) + " " + args);
}
#endif

// A few hundred lines of English, German, Italian and Hindi: enough text to
// train a small tokenizer and see every script round-trip.
inline std::string multilingual_text(int repeats = 20) {
  static const char* kLines[] = {
      "The quick brown fox jumps over the lazy dog 12345 times.",
      "A journey of a thousand miles begins with a single step.",
      "Der schnelle braune Fuchs springt über den faulen Hund.",
      "Grüße aus München: Straße, Größe, Äpfel und Öl.",
      "La volpe veloce salta sopra il cane pigro, perché è così.",
      "Città, università e caffè: più di novantanove ragioni.",
      "नमस्ते दुनिया, यह एक परीक्षण वाक्य है।",
      "भारत की राजधानी नई दिल्ली है और हिंदी एक भाषा है।",
  };
  std::string out;
  for (int r = 0; r < repeats; ++r) {
    for (const char* line : kLines) {
      out += line;
      out += (r % 3 == 0) ? "\n\n" : "\n";
    }
  }
  return out;
}

}  // namespace sc::testing
