// rms_norm(x, weight, eps) = x · rsqrt(mean(x², -1) + eps) · weight (the GPT's RMSNorm), as an
// autograd function with a hand-written backward that runs the fused row kernels of
// rms_norm_simd.h for float32 CPU tensors on AVX2 machines, and the plain torch formula otherwise
// (float64 gradient checks, bf16 autocast, CUDA). Same values as the torch formula up to float
// rounding (~1e-6 relative); tested against it in float64. grad_weight is reduced over fixed
// blocks of rows in a fixed order: bitwise the same run to run, whatever the thread count.
#pragma once

#include <torch/torch.h>

namespace attnlab {

// x: [..., D], weight: [D]. Normalises in float32 at least and returns x's dtype.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

}  // namespace attnlab
