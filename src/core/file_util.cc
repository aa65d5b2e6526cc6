#include "core/file_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace sc {
namespace fs = std::filesystem;

namespace {
std::string errno_text() { return std::strerror(errno); }

Status write_all(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::io_error("{}: write failed: {}", path, errno_text());
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status();
}
}  // namespace

Result<AtomicFileWriter> AtomicFileWriter::open(const std::string& final_path) {
  fs::path final_fs(final_path);
  fs::path dir = final_fs.parent_path().empty() ? fs::path(".") : final_fs.parent_path();
  std::string temp_path =
      (dir / fmt::format(".{}.tmp.{}", final_fs.filename().string(), ::getpid())).string();
  int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::io_error("{}: cannot create file in {}: {}", final_path, dir.string(), errno_text());
  }
  return AtomicFileWriter(final_path, std::move(temp_path), fd);
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : final_path_(std::move(other.final_path_)),
      temp_path_(std::move(other.temp_path_)),
      fd_(other.fd_),
      bytes_written_(other.bytes_written_) {
  other.fd_ = -1;
  other.temp_path_.clear();
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

Status AtomicFileWriter::write(const void* data, size_t size_bytes) {
  SC_RETURN_IF_ERROR(write_all(fd_, data, size_bytes, temp_path_));
  bytes_written_ += size_bytes;
  return Status();
}

Status AtomicFileWriter::write_at(uint64_t offset, const void* data, size_t size_bytes) {
  const char* p = static_cast<const char*>(data);
  while (size_bytes > 0) {
    ssize_t n = ::pwrite(fd_, p, size_bytes, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::io_error("{}: write failed: {}", temp_path_, errno_text());
    }
    p += n;
    offset += static_cast<uint64_t>(n);
    size_bytes -= static_cast<size_t>(n);
  }
  return Status();
}

Status AtomicFileWriter::commit() {
  if (fd_ < 0) return Status::internal("{}: commit on a closed writer", final_path_);
  if (::fsync(fd_) != 0) return Status::io_error("{}: fsync failed: {}", temp_path_, errno_text());
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Status::io_error("{}: close failed: {}", temp_path_, errno_text());
  }
  fd_ = -1;
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    return Status::io_error("{}: rename from {} failed: {}", final_path_, temp_path_, errno_text());
  }
  temp_path_.clear();
  fs::path dir = fs::path(final_path_).parent_path();
  return fsync_directory(dir.empty() ? "." : dir.string());
}

Status write_file_atomic(const std::string& path, std::string_view contents) {
  SC_ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::open(path));
  SC_RETURN_IF_ERROR(writer.write(contents));
  return writer.commit();
}

Result<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("{}: no such file", path);
    return Status::io_error("{}: cannot open: {}", path, errno_text());
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Status::io_error("{}: read failed: {}", path, errno_text());
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status fsync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::io_error("{}: cannot open directory: {}", dir, errno_text());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::io_error("{}: fsync of directory failed: {}", dir, errno_text());
  return Status();
}

Status ensure_writable_directory(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error("{}: cannot create output directory: {}", dir, ec.message());
  if (!fs::is_directory(dir)) return Status::io_error("{}: exists and is not a directory", dir);
  std::string probe = (fs::path(dir) / fmt::format(".write_probe.{}", ::getpid())).string();
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error("{}: output directory is not writable: {}", dir, errno_text());
  ::close(fd);
  ::unlink(probe.c_str());
  return Status();
}

Result<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("{}: no such file", path);
    return Status::io_error("{}: cannot open: {}", path, errno_text());
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = Status::io_error("{}: stat failed: {}", path, errno_text());
    ::close(fd);
    return s;
  }
  size_t size = static_cast<size_t>(st.st_size);
  const uint8_t* data = nullptr;
  if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      Status s = Status::io_error("{}: mmap failed: {}", path, errno_text());
      ::close(fd);
      return s;
    }
    data = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return MappedFile(path, data, size);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace sc
