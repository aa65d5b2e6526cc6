#include "model/weights_io.h"

#include <algorithm>

#include "model/safetensors.h"

namespace sc {

Status load_weights(const std::string& path, const std::vector<TensorSpec>& layout, float* params) {
  SC_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(path));
  for (const TensorSpec& t : layout) {
    SC_ASSIGN_OR_RETURN(std::vector<float> values, file.read_f32(t.name, t.shape));
    std::copy(values.begin(), values.end(), params + t.offset);
  }
  return Status();
}

Status save_weights(const std::string& path, const std::vector<TensorSpec>& layout, const float* params) {
  std::vector<TensorToWrite> tensors;
  tensors.reserve(layout.size());
  for (const TensorSpec& t : layout) tensors.push_back({t.name, DType::kF32, t.shape, params + t.offset});
  return write_safetensors(path, tensors, {{"format", "pt"}});
}

}  // namespace sc
