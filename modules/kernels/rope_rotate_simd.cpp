// RoPE rotate-half kernel for rope_rotate_simd.h, built with -mavx2 -mfma -ffast-math
// (CMakeLists.txt). Why: torch evaluates the rotation as narrow, four multiplies, an add, a
// subtract and a cat (seven passes and six temporaries over q and k, more in autograd's backward);
// this kernel reads each row once and writes it once, forward and backward. Pure multiply-adds:
// nothing here produces or relies on infinities or NaNs. Tails use masked loads and stores.
#include "modules/kernels/rope_rotate_simd.h"

#include "modules/kernels/avx2_support.h"

namespace attnlab::kernels {

#if defined(__AVX2__) && defined(__FMA__)

namespace {

// Sign = +1 forward, -1 inverse:  o1 = x1·c - sign·x2·s,  o2 = x2·c + sign·x1·s.
template <bool kInverse>
void rotate_rows(const float* x, int64_t x_row_stride, float* out, int64_t out_row_stride,
                 const float* cos, const float* sin, int64_t rows, int64_t half) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x1 = x + r * x_row_stride;
    const float* x2 = x1 + half;
    float* o1 = out + r * out_row_stride;
    float* o2 = o1 + half;
    const float* c = cos + r * half;
    const float* s = sin + r * half;
    auto rotate = [&](__m256 a, __m256 b, __m256 cv, __m256 sv, __m256& first, __m256& second) {
      if (kInverse) {
        first = _mm256_fmadd_ps(a, cv, _mm256_mul_ps(b, sv));
        second = _mm256_fmsub_ps(b, cv, _mm256_mul_ps(a, sv));
      } else {
        first = _mm256_fmsub_ps(a, cv, _mm256_mul_ps(b, sv));
        second = _mm256_fmadd_ps(b, cv, _mm256_mul_ps(a, sv));
      }
    };
    int64_t j = 0;
    for (; j + 8 <= half; j += 8) {
      __m256 first, second;
      rotate(_mm256_loadu_ps(x1 + j), _mm256_loadu_ps(x2 + j), _mm256_loadu_ps(c + j),
             _mm256_loadu_ps(s + j), first, second);
      _mm256_storeu_ps(o1 + j, first);
      _mm256_storeu_ps(o2 + j, second);
    }
    if (j < half) {
      const __m256i m = tail_mask(half - j);
      __m256 first, second;
      rotate(_mm256_maskload_ps(x1 + j, m), _mm256_maskload_ps(x2 + j, m),
             _mm256_maskload_ps(c + j, m), _mm256_maskload_ps(s + j, m), first, second);
      _mm256_maskstore_ps(o1 + j, m, first);
      _mm256_maskstore_ps(o2 + j, m, second);
    }
  }
}

}  // namespace

bool rope_rotate_simd_available() { return avx2_fma_available(); }

void rope_rotate_half_simd(const float* x, int64_t x_row_stride, float* out, int64_t out_row_stride,
                           const float* cos, const float* sin, int64_t rows, int64_t half,
                           bool inverse) {
  if (inverse)
    rotate_rows<true>(x, x_row_stride, out, out_row_stride, cos, sin, rows, half);
  else
    rotate_rows<false>(x, x_row_stride, out, out_row_stride, cos, sin, rows, half);
}

#else  // built without AVX2 (another architecture): callers use the torch formula instead

bool rope_rotate_simd_available() { return false; }
void rope_rotate_half_simd(const float*, int64_t, float*, int64_t, const float*, const float*,
                           int64_t, int64_t, bool) {}

#endif

}  // namespace attnlab::kernels
