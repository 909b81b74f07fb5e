// Fused prefix attention (forward and backward) over whole heads per thread; see
// prefix_attention.h. Row-major throughout: a head is a strided [T, D] matrix inside its tensor.
#include "modules/kernels/prefix_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "modules/kernels/blas_gemm.h"
#include "modules/kernels/prefix_attention_rows_simd.h"
#include "modules/kernels/prefix_softmax_simd.h"

namespace attnlab {

namespace {

using kernels::gemm_row_major;

constexpr int64_t kKeyBlock = 64;

// One head's [rows, cols] matrix inside a 4-D tensor: base pointer and row stride (elements).
template <typename T>
struct HeadMatrix {
  T* data;
  int64_t row_stride;
  T* row(int64_t r) const { return data + r * row_stride; }
};

template <typename T>
HeadMatrix<T> head_of(const torch::Tensor& t, int64_t b, int64_t h) {
  return {t.data_ptr<T>() + b * t.stride(0) + h * t.stride(1), t.stride(2)};
}

// Query rows per tile: 64, fewer for wide heads, so that every product in the kernels stays at
// or below the single-thread GEMM volume (tile × key block × head dim).
int64_t query_tile(int64_t widest_dim) {
  const int64_t rows =
      kernels::kSingleThreadGemmVolume / (kKeyBlock * std::max<int64_t>(1, widest_dim));
  return std::clamp<int64_t>(rows, 8, 64);
}

// Everything the kernels need, gathered once per call.
struct Problem {
  int64_t batch, heads, t_q, t_k, dim, value_dim;
  double scale;
  const int64_t* visible;  // [T_q], or [B, H, T_q] when visible_per_head
  bool visible_per_head;
  bool rows;           // the row kernels (float32) instead of the BLAS tiles
  const bool* active;  // [B, T_q, H] row mask (row kernels only) or nullptr
  // Offset of head (b, h) in a [B, H, T_q] tensor (the saved log-sum-exp, per-head counts).
  int64_t head_offset(int64_t b, int64_t h) const { return (b * heads + h) * t_q; }
  const int64_t* visible_row(int64_t b, int64_t h) const {
    return visible_per_head ? visible + head_offset(b, h) : visible;
  }
};

// Runs fn(b, h, scratch) for every head, heads split over LibTorch's intra-op threads; each
// thread gets `scratch_size` elements of scratch, reused across its heads.
template <typename T, typename Fn>
void for_each_head(const Problem& p, size_t scratch_size, const Fn& fn) {
  at::parallel_for(0, p.batch * p.heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(std::max<size_t>(scratch_size, 1));
    for (int64_t i = begin; i < end; ++i) fn(i / p.heads, i % p.heads, scratch.data());
  });
}

// The largest visible count of rows [start, start + rows): the tile's key prefix.
int64_t tile_prefix(const int64_t* visible, int64_t start, int64_t rows) {
  return *std::max_element(visible + start, visible + start + rows);
}

// scores[rows, prefix] (leading dim prefix) = scale · Q[start:start+rows] K[:prefix]ᵀ.
template <typename T>
void tile_scores(const Problem& p, const HeadMatrix<T>& q, const HeadMatrix<T>& k, int64_t start,
                 int64_t rows, int64_t prefix, T* scores) {
  for (int64_t j = 0; j < prefix; j += kKeyBlock) {
    const int64_t keys = std::min(kKeyBlock, prefix - j);
    gemm_row_major<T>(false, true, rows, keys, p.dim, static_cast<T>(p.scale), q.row(start),
                      q.row_stride, k.row(j), k.row_stride, T(0), scores + j, prefix);
  }
}

template <typename T>
void zero_rows(const HeadMatrix<T>& m, int64_t start, int64_t rows, int64_t cols) {
  for (int64_t r = start; r < start + rows; ++r) std::fill(m.row(r), m.row(r) + cols, T(0));
}

template <typename T>
void forward_head(const Problem& p, int64_t tile, const HeadMatrix<T>& q, const HeadMatrix<T>& k,
                  const HeadMatrix<T>& v, const HeadMatrix<T>& out, T* lse, const int64_t* visible,
                  T* scores) {
  for (int64_t start = 0; start < p.t_q; start += tile) {
    const int64_t rows = std::min(tile, p.t_q - start);
    const int64_t prefix = tile_prefix(visible, start, rows);
    if (prefix == 0) {  // no row of the tile sees a key
      zero_rows(out, start, rows, p.value_dim);
      std::fill(lse + start, lse + start + rows, T(0));
      continue;
    }
    tile_scores(p, q, k, start, rows, prefix, scores);
    for (int64_t r = 0; r < rows; ++r) {
      T* row = scores + r * prefix;
      const int64_t seen = visible[start + r];
      if (seen == 0) {
        std::fill(row, row + prefix, T(0));
        lse[start + r] = T(0);
      } else {
        lse[start + r] = kernels::softmax_visible(row, seen, prefix);
      }
    }
    for (int64_t j = 0; j < prefix; j += kKeyBlock) {
      const int64_t keys = std::min(kKeyBlock, prefix - j);
      gemm_row_major<T>(false, false, rows, p.value_dim, keys, T(1), scores + j, prefix, v.row(j),
                        v.row_stride, j == 0 ? T(0) : T(1), out.row(start), out.row_stride);
    }
  }
}

template <typename T>
void backward_head(const Problem& p, int64_t tile, const HeadMatrix<T>& q, const HeadMatrix<T>& k,
                   const HeadMatrix<T>& v, const HeadMatrix<T>& out, const HeadMatrix<T>& grad_out,
                   const T* lse, const int64_t* visible, const HeadMatrix<T>& grad_q,
                   const HeadMatrix<T>& grad_k, const HeadMatrix<T>& grad_v, T* probs) {
  T* grad_scores = probs + tile * p.t_k;
  const T scale = static_cast<T>(p.scale);
  zero_rows(grad_k, 0, p.t_k, p.dim);
  zero_rows(grad_v, 0, p.t_k, p.value_dim);
  for (int64_t start = 0; start < p.t_q; start += tile) {
    const int64_t rows = std::min(tile, p.t_q - start);
    const int64_t prefix = tile_prefix(visible, start, rows);
    if (prefix == 0) {
      zero_rows(grad_q, start, rows, p.dim);
      continue;
    }
    tile_scores(p, q, k, start, rows, prefix, probs);
    for (int64_t r = 0; r < rows; ++r) {
      kernels::probs_from_lse(probs + r * prefix, visible[start + r], prefix, lse[start + r]);
    }
    for (int64_t j = 0; j < prefix; j += kKeyBlock) {
      const int64_t keys = std::min(kKeyBlock, prefix - j);
      // dP = dO Vᵀ and dV += Pᵀ dO, block by block.
      gemm_row_major<T>(false, true, rows, keys, p.value_dim, T(1), grad_out.row(start),
                        grad_out.row_stride, v.row(j), v.row_stride, T(0), grad_scores + j, prefix);
      gemm_row_major<T>(true, false, keys, p.value_dim, rows, T(1), probs + j, prefix,
                        grad_out.row(start), grad_out.row_stride, T(1), grad_v.row(j),
                        grad_v.row_stride);
    }
    for (int64_t r = 0; r < rows; ++r) {
      // δ = Σ_j P_j dP_j = dO · O for a softmax row; dS = P ∘ (dP − δ).
      const T delta = kernels::dot(grad_out.row(start + r), out.row(start + r), p.value_dim);
      kernels::softmax_backward_row(probs + r * prefix, grad_scores + r * prefix, prefix, delta);
    }
    for (int64_t j = 0; j < prefix; j += kKeyBlock) {
      const int64_t keys = std::min(kKeyBlock, prefix - j);
      // dQ = scale · dS K and dK += scale · dSᵀ Q.
      gemm_row_major<T>(false, false, rows, p.dim, keys, scale, grad_scores + j, prefix, k.row(j),
                        k.row_stride, j == 0 ? T(0) : T(1), grad_q.row(start), grad_q.row_stride);
      gemm_row_major<T>(true, false, keys, p.dim, rows, scale, grad_scores + j, prefix,
                        q.row(start), q.row_stride, T(1), grad_k.row(j), grad_k.row_stride);
    }
  }
}

// Heads must have unit stride along their last dimension to be BLAS matrices.
torch::Tensor unit_last_stride(const torch::Tensor& t) {
  return t.stride(-1) == 1 && t.size(-1) > 0 ? t : t.contiguous();
}

Problem make_problem(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& visible, double scale, bool rows,
                     const torch::Tensor& active) {
  return {q.size(0),
          q.size(1),
          q.size(2),
          k.size(2),
          q.size(3),
          v.size(3),
          scale,
          visible.data_ptr<int64_t>(),
          visible.dim() == 3,
          rows,
          active.numel() > 0 ? active.data_ptr<bool>() : nullptr};
}

// The row kernels' view of head (b, h).
kernels::RowsHead rows_head(const Problem& p, const torch::Tensor& q, const torch::Tensor& k,
                            const torch::Tensor& v, int64_t b, int64_t h) {
  const auto qh = head_of<float>(q, b, h), kh = head_of<float>(k, b, h);
  const auto vh = head_of<float>(v, b, h);
  kernels::RowsHead head{p.t_q,
                         p.t_k,
                         p.dim,
                         p.value_dim,
                         static_cast<float>(p.scale),
                         qh.data,
                         qh.row_stride,
                         kh.data,
                         kh.row_stride,
                         vh.data,
                         vh.row_stride,
                         p.visible_row(b, h)};
  if (p.active != nullptr) {  // [B, T_q, H] contiguous
    head.active = p.active + b * p.t_q * p.heads + h;
    head.active_stride = p.heads;
  }
  return head;
}

// Scratch elements per thread: two [tile, T_k] blocks for the BLAS tiles.
size_t tiles_scratch(const Problem& p, int64_t tile) {
  return static_cast<size_t>(2 * tile * std::max<int64_t>(1, p.t_k));
}

class PrefixAttentionFunction : public torch::autograd::Function<PrefixAttentionFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q_in,
                               const torch::Tensor& k_in, const torch::Tensor& v_in,
                               const torch::Tensor& visible, double scale, bool rows,
                               const torch::Tensor& active) {
    auto q = unit_last_stride(q_in), k = unit_last_stride(k_in), v = unit_last_stride(v_in);
    const Problem p = make_problem(q, k, v, visible, scale, rows, active);
    auto out = torch::empty({p.batch, p.t_q, p.heads, p.value_dim}, q.options()).transpose(1, 2);
    auto lse = torch::empty({p.batch, p.heads, p.t_q}, q.options());
    if (p.rows) {
      for_each_head<float>(p, kernels::rows_forward_scratch(p.t_k, p.dim, p.value_dim),
                           [&](int64_t b, int64_t h, float* scratch) {
                             const auto o = head_of<float>(out, b, h);
                             kernels::rows_forward(
                                 rows_head(p, q, k, v, b, h), o.data, o.row_stride,
                                 lse.data_ptr<float>() + p.head_offset(b, h), scratch);
                           });
    } else {
      const int64_t tile = query_tile(std::max(p.dim, p.value_dim));
      AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "prefix_attention_forward", [&] {
        for_each_head<scalar_t>(
            p, tiles_scratch(p, tile), [&](int64_t b, int64_t h, scalar_t* scratch) {
              forward_head<scalar_t>(
                  p, tile, head_of<scalar_t>(q, b, h), head_of<scalar_t>(k, b, h),
                  head_of<scalar_t>(v, b, h), head_of<scalar_t>(out, b, h),
                  lse.data_ptr<scalar_t>() + p.head_offset(b, h), p.visible_row(b, h), scratch);
            });
      });
    }
    ctx->save_for_backward({q, k, v, out, lse, visible, active});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["rows"] = rows;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const auto &visible = saved[5], &active = saved[6];
    const Problem p = make_problem(q, k, v, visible, ctx->saved_data["scale"].toDouble(),
                                   ctx->saved_data["rows"].toBool(), active);
    auto grad_out = grads[0].defined() ? unit_last_stride(grads[0]) : torch::zeros_like(out);
    // Gradients in their inputs' layouts, so that the views before this op pass them through.
    auto grad_q = torch::empty_like(q), grad_k = torch::empty_like(k);
    auto grad_v = torch::empty_like(v);
    if (p.rows) {
      for_each_head<float>(
          p, kernels::rows_backward_scratch(p.t_k, p.dim, p.value_dim),
          [&](int64_t b, int64_t h, float* scratch) {
            const auto o = head_of<float>(out, b, h), go = head_of<float>(grad_out, b, h);
            const auto gq = head_of<float>(grad_q, b, h), gk = head_of<float>(grad_k, b, h);
            const auto gv = head_of<float>(grad_v, b, h);
            kernels::rows_backward(rows_head(p, q, k, v, b, h), o.data, o.row_stride, go.data,
                                   go.row_stride, lse.data_ptr<float>() + p.head_offset(b, h),
                                   gq.data, gq.row_stride, gk.data, gk.row_stride, gv.data,
                                   gv.row_stride, scratch);
          });
    } else {
      const int64_t tile = query_tile(std::max(p.dim, p.value_dim));
      AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "prefix_attention_backward", [&] {
        for_each_head<scalar_t>(
            p, tiles_scratch(p, tile), [&](int64_t b, int64_t h, scalar_t* scratch) {
              backward_head<scalar_t>(
                  p, tile, head_of<scalar_t>(q, b, h), head_of<scalar_t>(k, b, h),
                  head_of<scalar_t>(v, b, h), head_of<scalar_t>(out, b, h),
                  head_of<scalar_t>(grad_out, b, h), lse.data_ptr<scalar_t>() + p.head_offset(b, h),
                  p.visible_row(b, h), head_of<scalar_t>(grad_q, b, h),
                  head_of<scalar_t>(grad_k, b, h), head_of<scalar_t>(grad_v, b, h), scratch);
            });
      });
    }
    return {grad_q,          grad_k,          grad_v,         torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool prefix_attention_supported(const torch::Tensor& q) {
  static const bool available = kernels::prefix_softmax_simd_available();
  const auto dtype = q.scalar_type();
  return available && q.device().is_cpu() && (dtype == torch::kFloat || dtype == torch::kDouble);
}

bool prefix_rows_supported(const torch::Tensor& q, int64_t value_dim) {
  static const bool available = kernels::prefix_softmax_simd_available();
  return available && q.device().is_cpu() && q.scalar_type() == torch::kFloat &&
         kernels::rows_kernels_fit(q.size(-1), value_dim);
}

torch::Tensor prefix_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& visible, double scale,
                               PrefixKernel kernel, const torch::Tensor& active) {
  TORCH_CHECK(prefix_attention_supported(q), "prefix_attention: CPU float32/float64 only");
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "prefix_attention: 4-D q, k, v");
  TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
              "prefix_attention: q, k, v must share a dtype");
  TORCH_CHECK(k.size(0) == q.size(0) && k.size(1) == q.size(1) && k.size(3) == q.size(3) &&
                  v.size(0) == q.size(0) && v.size(1) == q.size(1) && v.size(2) == k.size(2),
              "prefix_attention: q [B, H, T_q, D], k [B, H, T_k, D], v [B, H, T_k, D_v]");
  auto counts = visible.to(torch::kLong).contiguous();
  const bool per_head = counts.dim() == 3;
  TORCH_CHECK((counts.dim() == 1 && counts.size(0) == q.size(2)) ||
                  (per_head && counts.size(0) == q.size(0) && counts.size(1) == q.size(1) &&
                   counts.size(2) == q.size(2)),
              "prefix_attention: visible must be [T_q] or [B, H, T_q]");
  if (counts.numel() > 0) {
    TORCH_CHECK(counts.min().item<int64_t>() >= 0 && counts.max().item<int64_t>() <= k.size(2),
                "prefix_attention: visible counts must lie in [0, T_k]");
  }
  const bool rows_fit = prefix_rows_supported(q, v.size(3));
  TORCH_CHECK(kernel != PrefixKernel::kRows || rows_fit,
              "prefix_attention: the row kernels need CPU float32 and head dims that are "
              "multiples of 8");
  // No mask is passed as an empty tensor: custom autograd functions reject undefined inputs.
  torch::Tensor row_mask = torch::empty({0}, torch::kBool);
  if (active.defined()) {
    TORCH_CHECK(rows_fit && kernel != PrefixKernel::kBlasTiles,
                "prefix_attention: an active-row mask needs the row kernels");
    TORCH_CHECK(active.dim() == 3 && active.size(0) == q.size(0) && active.size(1) == q.size(2) &&
                    active.size(2) == q.size(1),
                "prefix_attention: active must be [B, T_q, H]");
    row_mask = active.to(torch::kBool).contiguous();
  }
  // A plain causal mask over the same positions is what SDPA's is_causal computes.
  const bool plain_causal = !active.defined() && counts.dim() == 1 && q.size(2) == k.size(2) &&
                            torch::equal(counts, torch::arange(1, q.size(2) + 1, counts.options()));
  TORCH_CHECK(kernel != PrefixKernel::kSdpa || plain_causal,
              "prefix_attention: kSdpa needs a plain causal mask (visible_i = i + 1)");
  const int64_t head_dim = std::max(q.size(3), v.size(3));
  if (kernel == PrefixKernel::kSdpa ||
      (kernel == PrefixKernel::kAuto && plain_causal && head_dim >= kSdpaMinDim)) {
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                            /*is_causal=*/true, scale);
  }
  const bool rows = kernel == PrefixKernel::kRows || active.defined() ||
                    (kernel == PrefixKernel::kAuto && rows_fit && head_dim <= kRowsMaxDim);
  return PrefixAttentionFunction::apply(q, k, v, counts, scale, rows, row_mask);
}

}  // namespace attnlab
