// Fortran BLAS GEMM behind a row-major interface; see blas_gemm.h.
#include "modules/kernels/blas_gemm.h"

// The Fortran BLAS symbols libtorch_cpu exports (bound by the linker, LP64 integers).
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc);
}

namespace attnlab::kernels {

namespace {

template <typename T>
using FortranGemm = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                             const int* k, const T* alpha, const T* a, const int* lda, const T* b,
                             const int* ldb, const T* beta, T* c, const int* ldc);

template <typename T>
FortranGemm<T> gemm_symbol();
template <>
FortranGemm<float> gemm_symbol<float>() {
  return sgemm_;
}
template <>
FortranGemm<double> gemm_symbol<double>() {
  return dgemm_;
}

}  // namespace

template <typename T>
void gemm_row_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                    const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const FortranGemm<T> gemm = gemm_symbol<T>();
  if (m == 0 || n == 0) return;
  // A row-major matrix is its transpose in column-major order: C^T = op(B)^T op(A)^T, so the
  // column-major call takes B first with the same transpose flags.
  const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  const int lda_i = static_cast<int>(lda), ldb_i = static_cast<int>(ldb);
  const int ldc_i = static_cast<int>(ldc);
  gemm(&tb, &ta, &ni, &mi, &ki, &alpha, b, &ldb_i, a, &lda_i, &beta, c, &ldc_i);
}

template void gemm_row_major<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                    int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_row_major<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                                     int64_t, const double*, int64_t, double, double*, int64_t);

}  // namespace attnlab::kernels
