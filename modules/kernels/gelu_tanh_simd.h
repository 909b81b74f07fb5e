// Plain-pointer GELU (tanh approximation) kernels, compiled separately with AVX2/FMA and fast
// math (see CMakeLists.txt) so that the compiler vectorises expf. This file and its source
// include no LibTorch header: they are built with different target flags than the rest of
// attnlab, and sharing inline functions across such objects would be unsafe.
#pragma once

#include <cstdint>

namespace attnlab::kernels {

// True when the CPU has the AVX2 and FMA instructions the kernels below need.
bool gelu_tanh_simd_available();

// y = 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), elementwise over n floats.
void gelu_tanh_forward_simd(const float* x, float* y, int64_t n);

// grad_x = grad_y · d gelu(x) / dx, elementwise over n floats.
void gelu_tanh_backward_simd(const float* x, const float* grad_y, float* grad_x, int64_t n);

}  // namespace attnlab::kernels
