// Parameters to and from model.safetensors, by the names of the layout: the
// one place that maps the flat parameter buffer onto Hugging Face tensors.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "model/counts.h"

namespace sc {

// Reads every tensor of `layout` (any float dtype, converted to F32) into
// params; a missing tensor or a shape other than the layout's is an error
// naming the file and tensor. Extra tensors in the file are ignored.
Status load_weights(const std::string& path, const std::vector<TensorSpec>& layout, float* params);

// Writes every tensor of `layout` as F32, atomically.
Status save_weights(const std::string& path, const std::vector<TensorSpec>& layout, const float* params);

}  // namespace sc
