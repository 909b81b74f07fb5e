// Row kernels of the fused prefix attention (prefix_attention.h): the softmax over a row's visible
// keys, its recomputation from the saved log-sum-exp, and the softmax backward. Plain pointers,
// compiled with AVX2/FMA and fast math (CMakeLists.txt) so that the compiler vectorises exp and
// the reductions; this header and its source include no LibTorch header (see gelu_tanh_simd.h).
// Masked keys are never represented by infinities (fast math assumes there are none): a row's
// hidden keys are simply the columns at and after its `visible` count, which are written as 0.
#pragma once

#include <cstdint>

namespace attnlab::kernels {

// True when the CPU has the AVX2 and FMA instructions these kernels are built for.
bool prefix_softmax_simd_available();

// row[0, visible) holds scores and becomes their softmax; row[visible, width) is set to 0.
// Returns log Σ exp(scores) (the log-sum-exp kept for the backward). visible must be ≥ 1.
template <typename T>
T softmax_visible(T* row, int64_t visible, int64_t width);

// row[0, visible) holds scores and becomes exp(score − lse) (the forward's probabilities);
// row[visible, width) is set to 0.
template <typename T>
void probs_from_lse(T* row, int64_t visible, int64_t width, T lse);

// grad_row = probs ∘ (grad_row − delta), elementwise over width (the softmax backward given
// delta = Σ_j probs_j · grad_j, which equals dO·O for attention).
template <typename T>
void softmax_backward_row(const T* probs, T* grad_row, int64_t width, T delta);

// Σ a_i · b_i.
template <typename T>
T dot(const T* a, const T* b, int64_t n);

}  // namespace attnlab::kernels
