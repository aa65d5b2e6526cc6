// Shared by the libFuzzer targets in this folder (docs/reliability.md).
// Every target feeds one kind of untrusted input to the code that reads it;
// the rule under test is: a clear Status, never a crash, hang, sanitizer
// report or escaped exception. Inputs that are files are written to a
// scratch directory first, so the real file-reading paths are the ones
// fuzzed.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace sc::fuzz {

// A directory of this process's own under $TMPDIR, removed at exit.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/sc_fuzz_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    static const std::string kept = pattern;
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(kept, ignored);
    });
    return pattern;
  }();
  return dir;
}

// Writes `bytes` to `relative` inside the scratch directory; returns the path.
inline std::string write_scratch(const std::string& relative, std::string_view bytes) {
  const std::filesystem::path path = std::filesystem::path(scratch_dir()) / relative;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path.string();
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `body`; an exception that escapes it is a bug in the code under test
// (main()'s last-resort handler would report it as an internal error), so it
// aborts, which libFuzzer records as a crash with the input that caused it.
template <class Body>
int run_guarded(Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: escaped exception: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz: escaped exception of unknown type\n");
    std::abort();
  }
  return 0;
}

}  // namespace sc::fuzz
