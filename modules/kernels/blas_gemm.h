// Row-major GEMM on plain pointers through the Fortran BLAS (sgemm_/dgemm_) that LibTorch's CPU
// build already loads (OpenBLAS on Debian). Why not at::matmul: the fused attention kernels call
// many small (≤ 64×64×64) products from inside their own parallel loop over heads; going through
// the dispatcher and tensor views per tile costs more than the products themselves, and at these
// sizes OpenBLAS runs single-threaded in the calling thread (its threading threshold is
// m·n·k > 262144), so the calls compose with LibTorch's intra-op threads.
#pragma once

#include <cstdint>

namespace attnlab::kernels {

// True when sgemm_ and dgemm_ were found in the process (resolved once, by dlsym).
bool blas_gemm_available();

// The largest m·n·k for which OpenBLAS computes a product in the calling thread. Callers that
// run gemm_row_major from several threads keep their tiles at or below it.
constexpr int64_t kSingleThreadGemmVolume = 262144;

// C[m×n] = alpha · op(A) · op(B) + beta · C, all row-major with leading dimensions (elements per
// row) lda, ldb, ldc; op(A) is m×k (A is k×m when trans_a), op(B) is k×n (B is n×k when trans_b).
// With beta == 0, C is not read. Requires blas_gemm_available().
template <typename T>
void gemm_row_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                    const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace attnlab::kernels
