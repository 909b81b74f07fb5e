// gelu_tanh(x): GELU with the tanh approximation (GPT-2's), as an autograd function that runs the
// vectorised kernels of gelu_tanh_simd.h for contiguous float32 CPU tensors on AVX2 machines and
// torch::gelu(x, "tanh") otherwise (float64 gradient checks, bf16 autocast, CUDA). Same values
// as torch::gelu up to float rounding (~1e-6 relative); tested against it.
#pragma once

#include <torch/torch.h>

namespace attnlab {

torch::Tensor gelu_tanh(const torch::Tensor& x);

}  // namespace attnlab
