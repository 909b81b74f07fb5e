// rope_rotate_half(x, positions, inv_freq): RoPE with GPT-NeoX "rotate half" pairing,
// cat(x1·cos - x2·sin, x2·cos + x1·sin), as an autograd function whose forward and backward (the
// rotation by -angle) run the kernel of rope_rotate_simd.h: one read and one write per element
// instead of torch's narrow/mul/sub/add/cat chain. apply_rope (modules/rope.h) uses it for
// float32 CPU inputs on AVX2 machines and keeps its torch formula for everything else (float64
// gradient checks, bf16, CUDA, the interleaved pairing). The angle tables are computed per call
// in float64 from the given positions and frequencies (nothing is cached), so values match the
// float64 formula to float rounding (~1e-7 relative), also at large positions where float32 angles
// drift.
#pragma once

#include <torch/torch.h>

namespace attnlab {

// True when rope_rotate_half runs the fused kernel for these inputs: a float32 CPU x of shape
// [B, H, T, D] (any strides), D even, and positions of shape [T] on the CPU.
bool rope_rotate_half_supported(const torch::Tensor& x, const torch::Tensor& positions);

// x rotated at `positions` (see above); a new contiguous [B, H, T, D] float32 tensor. Requires
// rope_rotate_half_supported(x, positions).
// inv_freq: the [D/2] inverse frequencies (float64; modules/rope.h's rope_inverse_frequencies).
torch::Tensor rope_rotate_half(const torch::Tensor& x, const torch::Tensor& positions,
                               const torch::Tensor& inv_freq);

}  // namespace attnlab
