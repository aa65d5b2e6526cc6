#include "kernels/activation.h"

#include "kernels/device_math.h"
#include "kernels/elementwise.h"

namespace sc {
namespace {

template <GatedActivation kAct>
void forward_range(float* __restrict out, const float* __restrict gate,
                   const float* __restrict up, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    const float a = kAct == GatedActivation::kGeluTanh ? gelu_tanh(gate[i]) : silu(gate[i]);
    out[i] = a * up[i];
  }
}

template <GatedActivation kAct>
void backward_range(float* __restrict dgate, float* __restrict dup, const float* __restrict dout,
                    const float* __restrict gate, const float* __restrict up, size_t begin,
                    size_t end) {
  for (size_t i = begin; i < end; ++i) {
    const float g = gate[i];
    float a, da;
    if constexpr (kAct == GatedActivation::kGeluTanh) {
      a = gelu_tanh(g);
      da = gelu_tanh_grad(g);
    } else {
      a = silu(g);
      da = silu_grad(g);
    }
    dgate[i] += dout[i] * up[i] * da;
    dup[i] += dout[i] * a;
  }
}

}  // namespace

Result<GatedActivation> gated_activation_from_name(std::string_view hidden_act) {
  if (hidden_act == "gelu_pytorch_tanh" || hidden_act == "gelu_new" || hidden_act == "gelu_fast") {
    return GatedActivation::kGeluTanh;
  }
  if (hidden_act == "silu" || hidden_act == "swish") return GatedActivation::kSilu;
  return Status::invalid("hidden_act '{}' is not supported (use gelu_pytorch_tanh or silu)",
                         hidden_act);
}

void gated_activation_forward(ThreadPool& pool, float* out, const float* gate, const float* up,
                              size_t count, GatedActivation act) {
  parallel_for_elements(pool, count, [&](size_t begin, size_t end) {
    if (act == GatedActivation::kGeluTanh) {
      forward_range<GatedActivation::kGeluTanh>(out, gate, up, begin, end);
    } else {
      forward_range<GatedActivation::kSilu>(out, gate, up, begin, end);
    }
  });
}

void gated_activation_backward(ThreadPool& pool, float* dgate, float* dup, const float* dout,
                               const float* gate, const float* up, size_t count,
                               GatedActivation act) {
  parallel_for_elements(pool, count, [&](size_t begin, size_t end) {
    if (act == GatedActivation::kGeluTanh) {
      backward_range<GatedActivation::kGeluTanh>(dgate, dup, dout, gate, up, begin, end);
    } else {
      backward_range<GatedActivation::kSilu>(dgate, dup, dout, gate, up, begin, end);
    }
  });
}

}  // namespace sc
