// Fortran BLAS GEMM behind a row-major interface; see blas_gemm.h.
#include "modules/kernels/blas_gemm.h"

#include <dlfcn.h>

#include <stdexcept>

namespace attnlab::kernels {

namespace {

template <typename T>
using FortranGemm = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                             const int* k, const T* alpha, const T* a, const int* lda, const T* b,
                             const int* ldb, const T* beta, T* c, const int* ldc);

// LibTorch links the BLAS it was built against, so its symbols are in the global scope.
struct GemmSymbols {
  FortranGemm<float> sgemm = reinterpret_cast<FortranGemm<float>>(dlsym(RTLD_DEFAULT, "sgemm_"));
  FortranGemm<double> dgemm = reinterpret_cast<FortranGemm<double>>(dlsym(RTLD_DEFAULT, "dgemm_"));
};

const GemmSymbols& symbols() {
  static const GemmSymbols loaded;
  return loaded;
}

template <typename T>
FortranGemm<T> gemm_symbol();
template <>
FortranGemm<float> gemm_symbol<float>() {
  return symbols().sgemm;
}
template <>
FortranGemm<double> gemm_symbol<double>() {
  return symbols().dgemm;
}

}  // namespace

bool blas_gemm_available() { return symbols().sgemm != nullptr && symbols().dgemm != nullptr; }

template <typename T>
void gemm_row_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                    const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const FortranGemm<T> gemm = gemm_symbol<T>();
  if (gemm == nullptr) throw std::logic_error("gemm_row_major: no BLAS gemm in this process");
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
