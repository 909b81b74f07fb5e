// Plain-pointer RMSNorm kernels over rows of contiguous floats, compiled separately with AVX2/FMA
// and fast math (see CMakeLists.txt). Like gelu_tanh_simd.h, this header and its source include no
// LibTorch header: they are built with different target flags than the rest of attnlab.
// Every reduction runs in a fixed order (explicit vector accumulators, masked tails), so results
// depend only on the data and the row/block split, never on memory alignment.
#pragma once

#include <cstdint>

namespace attnlab::kernels {

// True when the CPU has the AVX2 and FMA instructions the kernels below need.
bool rms_norm_simd_available();

// For each of `rows` rows of `dim` floats: inv_rms[r] = 1 / sqrt(mean(x²) + eps) and
// y = x · inv_rms[r] · weight.
void rms_norm_forward_simd(const float* x, const float* weight, float* y, float* inv_rms,
                           int64_t rows, int64_t dim, double eps);

// Backward of the forward above for `rows` rows: grad_x and grad_weight_partial[dim] =
// Σ_rows grad_y · x · inv_rms, summed over the rows in order (overwritten, not accumulated
// into). Either output may be null when its gradient is not needed.
void rms_norm_backward_simd(const float* x, const float* weight, const float* inv_rms,
                            const float* grad_y, float* grad_x, float* grad_weight_partial,
                            int64_t rows, int64_t dim);

// out[d] = Σ_{b = 0 .. n-1} partials[b · dim + d], summed in order of b.
void sum_partials_simd(const float* partials, int64_t n, int64_t dim, float* out);

}  // namespace attnlab::kernels
