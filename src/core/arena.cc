#include "core/arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/human_format.h"

namespace sc {
namespace {
constexpr size_t kHugePageBytes = 2u << 20;
size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }
}  // namespace

size_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_bytes = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_bytes <= 0) return 0;
  return static_cast<size_t>(pages) * static_cast<size_t>(page_bytes);
}

Result<Arena> Arena::create(size_t capacity_bytes, std::string name) {
  if (capacity_bytes == 0) return Arena(std::move(name), nullptr, 0);
  // Every page is touched below: an arena the machine cannot hold would end
  // in the OOM killer, not in an error.
  const size_t memory = physical_memory_bytes();
  if (memory > 0 && capacity_bytes > memory) {
    return Status::invalid("{}: needs {} of memory ({} bytes), more than this machine's {}", name,
                           human_bytes(static_cast<double>(capacity_bytes)), capacity_bytes,
                           human_bytes(static_cast<double>(memory)));
  }
  // Whole huge pages, so a transparent huge page can back every byte.
  size_t capacity = round_up(capacity_bytes, kHugePageBytes);
  void* p = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return Status::io_error("arena '{}': cannot map {} bytes: {}", name, capacity, std::strerror(errno));
  }
  ::madvise(p, capacity, MADV_HUGEPAGE);  // a hint: fine if the kernel declines
  // Fault every page in now, once, instead of inside the first training step.
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  auto* bytes = static_cast<volatile uint8_t*>(p);
  for (size_t i = 0; i < capacity; i += page) bytes[i] = 0;
  return Arena(std::move(name), static_cast<uint8_t*>(p), capacity);
}

Arena::Arena(Arena&& other) noexcept
    : name_(std::move(other.name_)),
      base_(other.base_),
      capacity_bytes_(other.capacity_bytes_),
      used_bytes_(other.used_bytes_) {
  other.base_ = nullptr;
  other.capacity_bytes_ = 0;
  other.used_bytes_ = 0;
}

Arena& Arena::operator=(Arena&& other) noexcept {
  if (this != &other) {
    if (base_) ::munmap(base_, capacity_bytes_);
    name_ = std::move(other.name_);
    base_ = other.base_;
    capacity_bytes_ = other.capacity_bytes_;
    used_bytes_ = other.used_bytes_;
    other.base_ = nullptr;
    other.capacity_bytes_ = 0;
    other.used_bytes_ = 0;
  }
  return *this;
}

Arena::~Arena() {
  if (base_) ::munmap(base_, capacity_bytes_);
}

Result<void*> Arena::allocate_bytes(size_t size_bytes, size_t alignment) {
  size_t start = round_up(used_bytes_, alignment);
  if (size_bytes > capacity_bytes_ || start > capacity_bytes_ - size_bytes) {
    return Status::internal("arena '{}': out of space: {} bytes requested, {} of {} used", name_,
                            size_bytes, used_bytes_, capacity_bytes_);
  }
  used_bytes_ = start + size_bytes;
  return static_cast<void*>(base_ + start);
}

Result<Arena> ArenaPlan::allocate(std::string name) const {
  size_t bytes = 0;
  bool overflow = overflow_;
  for (const Request& r : requests_) {
    overflow |= r.bytes > SIZE_MAX - Arena::kDefaultAlignment;
    overflow |= __builtin_add_overflow(bytes, round_up(r.bytes, Arena::kDefaultAlignment), &bytes);
  }
  if (overflow) return Status::invalid("{}: needs more than 2^64 bytes of memory", name);
  SC_ASSIGN_OR_RETURN(Arena arena, Arena::create(bytes, std::move(name)));
  for (const Request& r : requests_) {
    SC_ASSIGN_OR_RETURN(*r.out, arena.allocate_bytes(r.bytes));
  }
  return arena;
}

}  // namespace sc
