// GELU-tanh kernels for gelu_tanh_simd.h, built with -mavx2 -mfma -ffast-math (CMakeLists.txt).
// Why: Debian's LibTorch 1.13 evaluates tanh slowly on CPU (gelu(approximate="tanh") costs ~7x
// gelu(erf)), and the GPT MLP calls it on every hidden activation forward and backward.
// tanh is evaluated through exp (see tanh_terms); |u| is clamped to 15 (tanh(15) is 1 in float)
// so exp never overflows, which keeps the formulas exact under fast math.
#include "modules/kernels/gelu_tanh_simd.h"

#include <cmath>

#include "modules/kernels/avx2_support.h"

namespace attnlab::kernels {

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

// For u = √(2/π)(x + 0.044715 x³) returns 1 + tanh(u) and 1 - tanh(u)², both without
// cancellation: with a = |u| and s = 1 - tanh(a) = 2 / (1 + exp(2a)) (small, and exact to float
// rounding, when tanh saturates), 1 + tanh(u) is 2 - s or s, and 1 - tanh² = s (2 - s).
struct TanhTerms {
  float one_plus_tanh, sech2;
};

inline TanhTerms tanh_terms(float x) {
  const float u = kSqrt2OverPi * (x + kCubic * x * x * x);
  const float a = std::fmin(std::fabs(u), 15.0f);
  const float s = 2.0f / (1.0f + std::exp(2.0f * a));
  return {u >= 0.0f ? 2.0f - s : s, s * (2.0f - s)};
}

}  // namespace

bool gelu_tanh_simd_available() {
  return avx2_fma_available();  // false on other architectures: callers use torch::gelu
}

void gelu_tanh_forward_simd(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * tanh_terms(x[i]).one_plus_tanh;
}

void gelu_tanh_backward_simd(const float* __restrict x, const float* __restrict grad_y,
                             float* __restrict grad_x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const TanhTerms t = tanh_terms(v);
    const float inner_derivative = kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
    grad_x[i] = grad_y[i] * 0.5f * (t.one_plus_tanh + v * t.sech2 * inner_derivative);
  }
}

}  // namespace attnlab::kernels
