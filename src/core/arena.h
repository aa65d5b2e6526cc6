// An arena is one large, aligned, pre-touched block allocated once: model
// parameters, gradients, optimizer moments and activations are carved from
// arenas at start-up so the step loop never allocates. On these machines the
// first touch of fresh memory ran at 0.4 GB/s, so pages are faulted in up
// front (and backed by transparent huge pages where the kernel allows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace sc {

class Arena {
 public:
  static constexpr size_t kDefaultAlignment = 64;  // one cache line, one AVX-512 vector

  // Reserves `capacity_bytes` (rounded up to whole pages) and touches every
  // page. More than the machine's memory is an error naming the arena and
  // both sizes, before anything is mapped.
  static Result<Arena> create(size_t capacity_bytes, std::string name);
  Arena() = default;  // empty: holds nothing until assigned a created arena
  Arena(Arena&& other) noexcept;
  Arena& operator=(Arena&& other) noexcept;
  Arena(const Arena&) = delete;
  ~Arena();

  // Carves `count` objects of T. Fails (does not grow) when the arena is full:
  // a size computed wrong at start-up must show, not silently allocate.
  template <class T>
  Result<T*> allocate(size_t count, size_t alignment = kDefaultAlignment) {
    size_t bytes = 0;
    if (__builtin_mul_overflow(count, sizeof(T), &bytes)) bytes = SIZE_MAX;  // refused below
    SC_ASSIGN_OR_RETURN(void* p, allocate_bytes(bytes, alignment));
    return static_cast<T*>(p);
  }
  Result<void*> allocate_bytes(size_t size_bytes, size_t alignment = kDefaultAlignment);

  // Forgets every allocation; the memory stays mapped and touched.
  void reset() { used_bytes_ = 0; }
  size_t used_bytes() const { return used_bytes_; }
  size_t capacity_bytes() const { return capacity_bytes_; }
  uint8_t* base() const { return base_; }
  const std::string& name() const { return name_; }

 private:
  Arena(std::string name, uint8_t* base, size_t capacity)
      : name_(std::move(name)), base_(base), capacity_bytes_(capacity) {}
  std::string name_;
  uint8_t* base_ = nullptr;
  size_t capacity_bytes_ = 0;
  size_t used_bytes_ = 0;
};

// Collects the buffers a component needs, then creates one arena of exactly
// their total size and points each request at its buffer: sizes are written
// down once, and nothing is allocated after start-up.
class ArenaPlan {
 public:
  template <class T>
  void add(T** out, size_t count) {
    size_t bytes = 0;
    overflow_ |= __builtin_mul_overflow(count, sizeof(T), &bytes);
    requests_.push_back({reinterpret_cast<void**>(out), bytes});
  }
  // An error, allocating nothing, when the sizes overflow 64 bits or exceed memory.
  Result<Arena> allocate(std::string name) const;

 private:
  struct Request {
    void** out;
    size_t bytes;
  };
  std::vector<Request> requests_;
  bool overflow_ = false;
};

// The machine's physical memory in bytes (0 if it cannot be read).
size_t physical_memory_bytes();

}  // namespace sc
