// Safetensors, the Hugging Face tensor file: an 8-byte little-endian header
// length N, N bytes of JSON header (padded with spaces so the data starts on
// an 8-byte boundary), then the tensors' bytes, little-endian and row-major.
//
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//
// Offsets are relative to the start of the data region. The reader rejects
// anything that is not exactly that: a header longer than the file or than
// 100 MB, JSON that is invalid or has duplicate keys, an unknown dtype, a byte
// range whose size is not product(shape) * dtype size, ranges that overlap,
// leave a hole or do not end exactly at the end of the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/file_util.h"
#include "core/status.h"

namespace sc {

enum class DType : uint8_t { kBool, kU8, kI8, kU16, kI16, kF16, kBF16, kU32, kI32, kF32, kU64, kI64, kF64 };

std::string_view dtype_name(DType dtype);  // "F32", "BF16", ...
std::optional<DType> dtype_from_name(std::string_view name);
size_t dtype_size_bytes(DType dtype);

// Number conversions used when reading BF16/F16 tensors (and by anything that
// stores them). f32_to_bf16 / f32_to_f16 round to nearest even and keep NaN.
float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);
float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);

// product(shape); 1 for a scalar (shape []), 0 for an empty tensor.
int64_t element_count(std::span<const int64_t> shape);
std::string shape_text(std::span<const int64_t> shape);  // "[2, 9, 67]"; past 8 dimensions "[..., ... (N dimensions)]"

// One tensor to write. `data` holds element_count(shape) * dtype_size_bytes
// bytes, little-endian, row-major; it is read during write_safetensors only.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes `path` atomically (a failed write leaves any previous file intact).
// Tensors are laid out largest element size first, otherwise in the order
// given, so every tensor starts aligned to its element size.
Status write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                         const std::map<std::string, std::string>& metadata = {});

// A tensor inside an open file: `data` points into the memory map and lives
// as long as the SafetensorsFile. It is aligned to the element size when the
// file was written with 8-byte header padding (ours and Hugging Face's are);
// read it with memcpy or the read_* helpers if unsure.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t size_bytes = 0;
  int64_t element_count() const { return sc::element_count(shape); }
};

// A validated, memory-mapped safetensors file.
class SafetensorsFile {
 public:
  static Result<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  // Every tensor, in the order of their data offsets.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // nullptr when absent.
  const TensorView* find(std::string_view name) const;
  // Not found is an error naming the file and the tensor.
  Result<const TensorView*> get(std::string_view name) const;

  // The tensor as float32, converted from F32, BF16, F16 or F64. With
  // `expected_shape`, a different shape is an error naming both shapes.
  Result<std::vector<float>> read_f32(std::string_view name) const;
  Result<std::vector<float>> read_f32(std::string_view name, const std::vector<int64_t>& expected_shape) const;
  // The tensor as uint32 (tokens), from any integer dtype whose values fit.
  Result<std::vector<uint32_t>> read_u32(std::string_view name) const;

  // A `__metadata__` entry; absent is an error naming the file and the key.
  Result<std::string> metadata_value(std::string_view key) const;
  Result<double> metadata_double(std::string_view key) const;

 private:
  SafetensorsFile(MappedFile file, std::vector<TensorView> tensors, std::map<std::string, std::string> metadata)
      : file_(std::move(file)), tensors_(std::move(tensors)), metadata_(std::move(metadata)) {}
  MappedFile file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Converts any float tensor to float32 into `out` (out.size() must equal the
// element count).
Status convert_to_f32(const TensorView& tensor, std::span<float> out);

}  // namespace sc
