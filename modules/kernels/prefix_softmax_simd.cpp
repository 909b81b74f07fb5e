// Row softmax kernels for prefix_softmax_simd.h, built with -mavx2 -mfma -ffast-math.
#include "modules/kernels/prefix_softmax_simd.h"

#include <algorithm>
#include <cmath>

#include "modules/kernels/avx2_support.h"

namespace attnlab::kernels {

bool prefix_softmax_simd_available() {
#if defined(__AVX2__) && defined(__FMA__)
  return avx2_fma_available();
#else
  return true;  // another architecture: the same loops, compiled for it
#endif
}

template <typename T>
T softmax_visible(T* __restrict row, int64_t visible, int64_t width) {
  T peak = row[0];
  for (int64_t j = 1; j < visible; ++j) peak = std::max(peak, row[j]);
  T sum = 0;
  for (int64_t j = 0; j < visible; ++j) {
    const T e = std::exp(row[j] - peak);  // ≤ 1: no overflow
    row[j] = e;
    sum += e;
  }
  const T inverse = T(1) / sum;  // sum ≥ 1 (the peak's own term)
  for (int64_t j = 0; j < visible; ++j) row[j] *= inverse;
  std::fill(row + visible, row + width, T(0));
  return peak + std::log(sum);
}

template <typename T>
void probs_from_lse(T* __restrict row, int64_t visible, int64_t width, T lse) {
  for (int64_t j = 0; j < visible; ++j) row[j] = std::exp(row[j] - lse);
  std::fill(row + visible, row + width, T(0));
}

template <typename T>
void softmax_backward_row(const T* __restrict probs, T* __restrict grad_row, int64_t width,
                          T delta) {
  for (int64_t j = 0; j < width; ++j) grad_row[j] = probs[j] * (grad_row[j] - delta);
}

template <typename T>
T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  T sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

template float softmax_visible<float>(float*, int64_t, int64_t);
template double softmax_visible<double>(double*, int64_t, int64_t);
template void probs_from_lse<float>(float*, int64_t, int64_t, float);
template void probs_from_lse<double>(double*, int64_t, int64_t, double);
template void softmax_backward_row<float>(const float*, float*, int64_t, float);
template void softmax_backward_row<double>(const double*, double*, int64_t, double);
template float dot<float>(const float*, const float*, int64_t);
template double dot<double>(const double*, const double*, int64_t);

}  // namespace attnlab::kernels
