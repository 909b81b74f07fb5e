// Plain-pointer RoPE "rotate half" kernel, compiled separately with AVX2/FMA and fast math (see
// CMakeLists.txt). Like gelu_tanh_simd.h, this header and its source include no LibTorch header:
// they are built with different target flags than the rest of attnlab.
#pragma once

#include <cstdint>

namespace attnlab::kernels {

// True when the CPU has the AVX2 and FMA instructions the kernel below needs.
bool rope_rotate_simd_available();

// Rotates `rows` rows of 2·half floats, row i read from x + i·x_row_stride and written to
// out + i·out_row_stride (each row contiguous), with the angle table row cos/sin + i·half:
//   out[:half] = x1·cos - x2·sin, out[half:] = x2·cos + x1·sin   (x1 = x[:half], x2 = x[half:])
// or, with `inverse` (the backward: rotation by -angle),
//   out[:half] = x1·cos + x2·sin, out[half:] = x2·cos - x1·sin.
// x and out must not overlap.
void rope_rotate_half_simd(const float* x, int64_t x_row_stride, float* out, int64_t out_row_stride,
                           const float* cos, const float* sin, int64_t rows, int64_t half,
                           bool inverse);

}  // namespace attnlab::kernels
