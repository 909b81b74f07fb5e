// Helpers shared by the *_simd.cpp kernels, and included only by them: they are compiled with
// AVX2/FMA target flags (CMakeLists.txt), so these inline functions must not reach a translation
// unit built without those flags (an inline function compiled twice with different flags may be
// merged into either version by the linker).
#pragma once

#include <cstdint>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace attnlab::kernels {

// True when this build targets AVX2/FMA and the running CPU has them: the run-time check behind
// each kernel's *_simd_available().
inline bool avx2_fma_available() {
#if defined(__AVX2__) && defined(__FMA__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

#if defined(__AVX2__) && defined(__FMA__)
// Lanes [0, n) set, for a last partial vector (0 < n < 8) with masked loads and stores.
inline __m256i tail_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

}  // namespace attnlab::kernels
