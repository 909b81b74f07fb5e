// Row-major GEMM on plain pointers through the Fortran BLAS that LibTorch's CPU library carries
// and exports (libtorch_cpu's bundled MKL: sgemm_/dgemm_, LP64), bound at link time. Why not
// at::matmul: the fused attention kernels call many small (<= 64x64x64) products from inside
// their own parallel loop over heads; the dispatcher and tensor views per tile cost more than the
// products. Why not at::native::cpublas::gemm: its float/double overloads are not exported from
// libtorch_cpu (only the generic gemm_stub kernel is). Called from inside an OpenMP parallel
// region, MKL computes in the calling thread, so the calls compose with LibTorch's threads.
#pragma once

#include <cstdint>

namespace attnlab::kernels {

// Tile volume (m·n·k) that callers running gemm_row_major from several threads stay under, so a
// product is small enough to run in the calling thread whatever BLAS threading policy applies.
constexpr int64_t kSingleThreadGemmVolume = 262144;

// C[m×n] = alpha · op(A) · op(B) + beta · C, all row-major with leading dimensions (elements per
// row) lda, ldb, ldc; op(A) is m×k (A is k×m when trans_a), op(B) is k×n (B is n×k when trans_b).
// With beta == 0, C is not read.
template <typename T>
void gemm_row_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                    const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace attnlab::kernels
