// prefix_attention: fused softmax attention for masks in which every query row sees a prefix of
// the keys — causal and block-causal attention over ascending keys (with or without a KV cache)
// and MoH's gathered routed rows. Row i attends to keys [0, visible_i).
//
// Why a kernel: composed from LibTorch ops, attention at the model sizes this project trains
// (T ≤ 2048, head dim ≤ 128) spends as much time in dispatch, masking, temporaries and torch's
// per-matrix bmm loop (each product split over all threads) as in arithmetic. Here each thread
// takes whole heads and walks 64-row query tiles over 64-key blocks with single-threaded BLAS
// products (blas_gemm.h), computing each row's exact softmax over its visible keys only (a tile's
// rows fit in a scratch buffer, so no online re-scaling is needed). The [T_q, T_k] probabilities
// are never stored: the backward recomputes them from the saved log-sum-exp, as FlashAttention
// does. Values and gradients equal dense masked attention up to float rounding (tested against
// float64 dense attention); a row with no visible key gets a zero output and zero gradients, like
// masked_softmax_probs.
#pragma once

#include <torch/torch.h>

namespace attnlab {

// True when prefix_attention can run on q's device and dtype: CPU, float32 or float64, with a
// BLAS gemm in the process. Callers fall back to composed ops otherwise (CUDA, bf16).
bool prefix_attention_supported(const torch::Tensor& q);

// q: [B, H, T_q, D]; k: [B, H, T_k, D]; v: [B, H, T_k, D_v] (any strides; KV heads already
// repeated); visible: int64 [T_q] shared by all heads or [B, H, T_q], each in [0, T_k].
// Returns softmax(q kᵀ · scale) v over each row's visible keys: [B, H, T_q, D_v] (stored as
// [B, T_q, H, D_v] so that merging the heads afterwards is a view). Differentiable in q, k, v.
// True when the row kernels (prefix_attention_rows_simd.h) can run q with values of value_dim:
// CPU float32, head dims multiples of 8. Needed for kRows and for `active`.
bool prefix_rows_supported(const torch::Tensor& q, int64_t value_dim);

// kernel picks the implementation, and prefix_attention is the one place that chooses: kAuto
// uses LibTorch's at::scaled_dot_product_attention (its CPU flash kernel) for plain causal masks
// (T_q == T_k, visible_i = i + 1, no active rows) with heads at least kSdpaMinDim wide, the row
// kernels for heads they support up to kRowsMaxDim wide, and the BLAS tiles otherwise; the others
// force one (tests and benchmarks compare them; kSdpa needs a plain causal mask). active:
// optional [B, T_q, H] bool (MoH's routed heads picked per token): rows where it is false are
// skipped and get zero output and gradients; it needs the row kernels.
enum class PrefixKernel { kAuto, kBlasTiles, kRows, kSdpa };
// Measured with bench_prefix_attention (T 256, batch 16, d_model 384, 2 threads, LibTorch 2.11
// with MKL): plain causal at head dim 16: rows 0.44x of composed, SDPA 0.55x; at 32: rows 0.99x,
// SDPA 0.64x; at 64 and 128 SDPA 0.96-1.00x, rows 1.04-1.27x, BLAS tiles 1.30-1.40x. The tiles
// (MKL products from inside the head loop) lost their edge over the rows kernels at every width.
constexpr int64_t kRowsMaxDim = 128;
constexpr int64_t kSdpaMinDim = 32;

torch::Tensor prefix_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& visible, double scale,
                               PrefixKernel kernel = PrefixKernel::kAuto,
                               const torch::Tensor& active = torch::Tensor());

}  // namespace attnlab
