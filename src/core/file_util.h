// Files the way every format in supercluster needs them: written under a
// temporary name, fsynced and renamed so a reader never sees a partial file;
// read whole or memory-mapped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sc {

// Writes `final_path` atomically: bytes go to a hidden temporary file in the
// same directory; commit() fsyncs it, renames it over `final_path` and fsyncs
// the directory. Destroying an uncommitted writer deletes the temporary file,
// so an interrupted write leaves the previous file (if any) untouched.
class AtomicFileWriter {
 public:
  static Result<AtomicFileWriter> open(const std::string& final_path);
  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  Status write(const void* data, size_t size_bytes);
  Status write(std::string_view bytes) { return write(bytes.data(), bytes.size()); }
  // Overwrites bytes already written (e.g. a header filled in at the end).
  Status write_at(uint64_t offset, const void* data, size_t size_bytes);
  Status commit();
  uint64_t bytes_written() const { return bytes_written_; }
  const std::string& path() const { return final_path_; }

 private:
  AtomicFileWriter(std::string final_path, std::string temp_path, int fd)
      : final_path_(std::move(final_path)), temp_path_(std::move(temp_path)), fd_(fd) {}
  std::string final_path_;
  std::string temp_path_;
  int fd_ = -1;
  uint64_t bytes_written_ = 0;
};

Status write_file_atomic(const std::string& path, std::string_view contents);
Result<std::string> read_file(const std::string& path);

// fsync of a directory, so a rename inside it survives a crash.
Status fsync_directory(const std::string& dir);

// Creates `dir` (and parents) if needed and proves it is writable by creating
// and removing a probe file: fails fast, before hours of work are done.
Status ensure_writable_directory(const std::string& dir);

// A read-only memory map of a whole file.
class MappedFile {
 public:
  static Result<MappedFile> open(const std::string& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  ~MappedFile();
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sc
