// RMSNorm kernels for rms_norm_simd.h, built with -mavx2 -mfma -ffast-math (CMakeLists.txt).
// Why: the torch formula x · rsqrt(mean(x²) + eps) · w runs ~5 passes over the activations
// forward and ~10 in autograd's backward; here a row is read twice forward (sum of squares, then
// scale) and twice backward (one dot product, then grad_x and the grad_weight partial), while it
// sits in L1. Written with intrinsics rather than auto-vectorised loops so that the order of every
// sum is fixed by this code (bitwise-reproducible results: the trainer promises bitwise resume);
// tails use masked loads and stores. Nothing here produces or relies on infinities or NaNs
// (eps > 0 keeps the square root positive).
#include "modules/kernels/rms_norm_simd.h"

#include <cmath>

#include "modules/kernels/avx2_support.h"

namespace attnlab::kernels {

#if defined(__AVX2__) && defined(__FMA__)

namespace {

// Sum of the 8 lanes in a fixed order.
inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Σ a[j]·b[j] (or Σ a[j]·b[j]·c[j] with c) over dim floats: four vector accumulators, then a
// masked tail, then one fixed-order horizontal sum.
template <bool kThree>
inline float dot(const float* a, const float* b, const float* c, int64_t dim) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  auto term = [&](int64_t j) {
    __m256 ab = _mm256_loadu_ps(a + j);
    return kThree ? _mm256_mul_ps(ab, _mm256_loadu_ps(c + j)) : ab;
  };
  int64_t j = 0;
  for (; j + 32 <= dim; j += 32) {
    acc0 = _mm256_fmadd_ps(term(j), _mm256_loadu_ps(b + j), acc0);
    acc1 = _mm256_fmadd_ps(term(j + 8), _mm256_loadu_ps(b + j + 8), acc1);
    acc2 = _mm256_fmadd_ps(term(j + 16), _mm256_loadu_ps(b + j + 16), acc2);
    acc3 = _mm256_fmadd_ps(term(j + 24), _mm256_loadu_ps(b + j + 24), acc3);
  }
  for (; j + 8 <= dim; j += 8) acc0 = _mm256_fmadd_ps(term(j), _mm256_loadu_ps(b + j), acc0);
  if (j < dim) {
    const __m256i m = tail_mask(dim - j);
    __m256 ab = _mm256_maskload_ps(a + j, m);
    if (kThree) ab = _mm256_mul_ps(ab, _mm256_maskload_ps(c + j, m));
    acc1 = _mm256_fmadd_ps(ab, _mm256_maskload_ps(b + j, m), acc1);
  }
  return horizontal_sum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

}  // namespace

bool rms_norm_simd_available() { return avx2_fma_available(); }

void rms_norm_forward_simd(const float* x, const float* weight, float* y, float* inv_rms,
                           int64_t rows, int64_t dim, double eps) {
  for (int64_t r = 0; r < rows; ++r, x += dim, y += dim) {
    const double mean_square = static_cast<double>(dot<false>(x, x, nullptr, dim)) / dim;
    const float inv = static_cast<float>(1.0 / std::sqrt(mean_square + eps));
    inv_rms[r] = inv;
    const __m256 s = _mm256_set1_ps(inv);
    int64_t j = 0;
    for (; j + 8 <= dim; j += 8) {
      const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + j), s);
      _mm256_storeu_ps(y + j, _mm256_mul_ps(v, _mm256_loadu_ps(weight + j)));
    }
    if (j < dim) {
      const __m256i m = tail_mask(dim - j);
      const __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + j, m), s);
      _mm256_maskstore_ps(y + j, m, _mm256_mul_ps(v, _mm256_maskload_ps(weight + j, m)));
    }
  }
}

// With r = inv_rms and y = x · r · w:  grad_x = r · (g·w) - x · r³/D · Σ (g·w·x),
// grad_w = Σ_rows g · x · r.
void rms_norm_backward_simd(const float* x, const float* weight, const float* inv_rms,
                            const float* grad_y, float* grad_x, float* grad_weight_partial,
                            int64_t rows, int64_t dim) {
  float* gw = grad_weight_partial;
  if (gw != nullptr)
    for (int64_t j = 0; j < dim; ++j) gw[j] = 0.0f;
  for (int64_t r = 0; r < rows; ++r, x += dim, grad_y += dim) {
    const float inv = inv_rms[r];
    const __m256 s = _mm256_set1_ps(inv);
    if (grad_x != nullptr) {
      const double d = dot<true>(grad_y, x, weight, dim);
      const float c = static_cast<float>(d * inv * inv * inv / dim);
      const __m256 cv = _mm256_set1_ps(c);
      float* gx = grad_x + r * dim;
      int64_t j = 0;
      for (; j + 8 <= dim; j += 8) {
        const __m256 gwv = _mm256_mul_ps(_mm256_loadu_ps(grad_y + j), _mm256_loadu_ps(weight + j));
        const __m256 xv = _mm256_loadu_ps(x + j);
        _mm256_storeu_ps(gx + j, _mm256_fmsub_ps(gwv, s, _mm256_mul_ps(xv, cv)));
      }
      if (j < dim) {
        const __m256i m = tail_mask(dim - j);
        const __m256 gwv =
            _mm256_mul_ps(_mm256_maskload_ps(grad_y + j, m), _mm256_maskload_ps(weight + j, m));
        const __m256 xv = _mm256_maskload_ps(x + j, m);
        _mm256_maskstore_ps(gx + j, m, _mm256_fmsub_ps(gwv, s, _mm256_mul_ps(xv, cv)));
      }
    }
    if (gw == nullptr) continue;
    int64_t j = 0;
    for (; j + 8 <= dim; j += 8) {
      const __m256 gx_r = _mm256_mul_ps(_mm256_loadu_ps(grad_y + j), _mm256_loadu_ps(x + j));
      _mm256_storeu_ps(gw + j, _mm256_fmadd_ps(gx_r, s, _mm256_loadu_ps(gw + j)));
    }
    if (j < dim) {
      const __m256i m = tail_mask(dim - j);
      const __m256 gx_r =
          _mm256_mul_ps(_mm256_maskload_ps(grad_y + j, m), _mm256_maskload_ps(x + j, m));
      _mm256_maskstore_ps(gw + j, m, _mm256_fmadd_ps(gx_r, s, _mm256_maskload_ps(gw + j, m)));
    }
  }
}

void sum_partials_simd(const float* partials, int64_t n, int64_t dim, float* out) {
  int64_t j = 0;
  for (; j + 8 <= dim; j += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n; ++b)
      acc = _mm256_add_ps(acc, _mm256_loadu_ps(partials + b * dim + j));
    _mm256_storeu_ps(out + j, acc);
  }
  if (j < dim) {
    const __m256i m = tail_mask(dim - j);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n; ++b)
      acc = _mm256_add_ps(acc, _mm256_maskload_ps(partials + b * dim + j, m));
    _mm256_maskstore_ps(out + j, m, acc);
  }
}

#else  // built without AVX2 (another architecture): callers use the torch formula instead

bool rms_norm_simd_available() { return false; }
void rms_norm_forward_simd(const float*, const float*, float*, float*, int64_t, int64_t, double) {}
void rms_norm_backward_simd(const float*, const float*, const float*, const float*, float*, float*,
                            int64_t, int64_t) {}
void sum_partials_simd(const float*, int64_t, int64_t, float*) {}

#endif

}  // namespace attnlab::kernels
