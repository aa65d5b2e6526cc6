// A safetensors file (every checkpoint's model.safetensors and optimizer
// shards, and models brought from elsewhere): header JSON, dtypes, shapes,
// offsets, then every tensor read as float and every metadata entry.
#include "fuzz_util.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sc::fuzz::run_guarded([&] {
    const std::string path = sc::fuzz::write_scratch("model.safetensors", sc::fuzz::as_text(data, size));
    sc::Result<sc::SafetensorsFile> file = sc::SafetensorsFile::open(path);
    if (!file.ok()) return;
    for (const sc::TensorView& tensor : file->tensors()) {
      (void)file->read_f32(tensor.name);
      (void)file->read_u32(tensor.name);
    }
    for (const auto& [key, value] : file->metadata()) (void)file->metadata_double(key);
  });
}
