// Row-exact float32 kernels for one head of prefix attention (prefix_attention.h): query rows are
// taken four at a time and each group touches only the keys its rows can see, rounded up to 16,
// instead of the 64-row × 64-key tiles of the BLAS path. Why: with thin heads (head dim 16–32,
// as in MoH's many small heads and the default GPT) a BLAS product does little work per call and
// MoH's gathered rows, whose visible counts grow unevenly, would waste much of each 64-row tile.
// Scores are computed against a transposed copy of K (so the inner loop runs along keys),
// weighted sums along value rows, and key/value gradients are accumulated transposed, then
// written back once. Written with GCC vector extensions; built with AVX2/FMA and fast math like
// the other *_simd.cpp files, and including no LibTorch header.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attnlab::kernels {

// One head: [rows, cols] row-major matrices given by base pointer and row stride (elements).
struct RowsHead {
  int64_t t_q, t_k, dim, value_dim;
  float scale;
  const float* q;
  int64_t q_stride;
  const float* k;
  int64_t k_stride;
  const float* v;
  int64_t v_stride;
  const int64_t* visible;  // [t_q]: row i sees keys [0, visible[i])
  // Optional: row i is computed only where active[i · active_stride] (MoH's routed heads); other
  // rows get zero output and gradients. nullptr: every row.
  const bool* active = nullptr;
  int64_t active_stride = 0;
};

// True when the row kernels handle these head sizes (both multiples of 8).
bool rows_kernels_fit(int64_t dim, int64_t value_dim);

// Floats of scratch the forward / backward of one head needs.
size_t rows_forward_scratch(int64_t t_k, int64_t dim, int64_t value_dim);
size_t rows_backward_scratch(int64_t t_k, int64_t dim, int64_t value_dim);

// out[i] = softmax(scale · q_i k[:visible_i]ᵀ) v[:visible_i] (zero when visible_i = 0);
// lse[i] = the log-sum-exp of row i's scaled scores (0 for an empty row).
void rows_forward(const RowsHead& head, float* out, int64_t out_stride, float* lse, float* scratch);

// Gradients of the forward above given grad_out; out and lse are the forward's results.
void rows_backward(const RowsHead& head, const float* out, int64_t out_stride,
                   const float* grad_out, int64_t grad_out_stride, const float* lse, float* grad_q,
                   int64_t grad_q_stride, float* grad_k, int64_t grad_k_stride, float* grad_v,
                   int64_t grad_v_stride, float* scratch);

}  // namespace attnlab::kernels
