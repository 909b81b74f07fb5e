// Row-exact prefix-attention kernels for prefix_attention_rows_simd.h (AVX2/FMA, fast math).
// Vectors are 8 floats (GCC vector extensions); key ranges are padded to 16 with zero columns in
// the transposed copies, so the key loops need no tails.
#include "modules/kernels/prefix_attention_rows_simd.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "modules/kernels/prefix_softmax_simd.h"

namespace attnlab::kernels {

namespace {

typedef float Vec __attribute__((vector_size(32)));
constexpr int64_t kLanes = 8;
constexpr int64_t kKeyStep = 16;  // keys per inner-loop step (two vectors)
constexpr int kGroup = 4;         // query rows per group

inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof(v)); }
inline Vec splat(float x) { return Vec{} + x; }

int64_t padded(int64_t n) { return (n + kKeyStep - 1) / kKeyStep * kKeyStep; }

// dst[c, j] = src[j, c] for j < rows, c < cols; columns j in [rows, ld) are zero.
void transpose_padded(const float* src, int64_t src_stride, int64_t rows, int64_t cols, float* dst,
                      int64_t ld) {
  for (int64_t c = 0; c < cols; ++c) std::fill(dst + c * ld + rows, dst + (c + 1) * ld, 0.0f);
  for (int64_t j = 0; j < rows; ++j) {
    const float* row = src + j * src_stride;
    for (int64_t c = 0; c < cols; ++c) dst[c * ld + j] = row[c];
  }
}

// out[r, j] = alpha · Σ_d x_r[d] · mt[d, j] for r < R, j < n (n a multiple of 16).
template <int R>
void rows_times_transposed(const float* const* x, int64_t dim, const float* mt, int64_t ld,
                           int64_t n, float alpha, float* out, int64_t out_ld) {
  for (int64_t j = 0; j < n; j += kKeyStep) {
    Vec acc[R][2] = {};
    for (int64_t d = 0; d < dim; ++d) {
      const Vec m0 = load(mt + d * ld + j), m1 = load(mt + d * ld + j + kLanes);
      for (int r = 0; r < R; ++r) {
        const Vec xr = splat(x[r][d]);
        acc[r][0] += xr * m0;
        acc[r][1] += xr * m1;
      }
    }
    for (int r = 0; r < R; ++r) {
      store(out + r * out_ld + j, acc[r][0] * alpha);
      store(out + r * out_ld + j + kLanes, acc[r][1] * alpha);
    }
  }
}

// y_r[c] = alpha · Σ_{j<n} w[r, j] · m[j, c] for c < cols (a multiple of 8).
template <int R>
void weighted_rows(const float* w, int64_t w_ld, int64_t n, const float* m, int64_t m_stride,
                   int64_t cols, float alpha, float* const* y) {
  int64_t c = 0;
  for (; c + 2 * kLanes <= cols; c += 2 * kLanes) {
    Vec acc[R][2] = {};
    for (int64_t j = 0; j < n; ++j) {
      const Vec m0 = load(m + j * m_stride + c), m1 = load(m + j * m_stride + c + kLanes);
      for (int r = 0; r < R; ++r) {
        const Vec wr = splat(w[r * w_ld + j]);
        acc[r][0] += wr * m0;
        acc[r][1] += wr * m1;
      }
    }
    for (int r = 0; r < R; ++r) {
      store(y[r] + c, acc[r][0] * alpha);
      store(y[r] + c + kLanes, acc[r][1] * alpha);
    }
  }
  for (; c < cols; c += kLanes) {
    Vec acc[R] = {};
    for (int64_t j = 0; j < n; ++j) {
      const Vec m0 = load(m + j * m_stride + c);
      for (int r = 0; r < R; ++r) acc[r] += splat(w[r * w_ld + j]) * m0;
    }
    for (int r = 0; r < R; ++r) store(y[r] + c, acc[r] * alpha);
  }
}

// mt[d, j] += Σ_r x_r[d] · w[r, j] for d < dim, j < n (n a multiple of 16).
template <int R>
void accumulate_outer(const float* const* x, int64_t dim, const float* w, int64_t w_ld, int64_t n,
                      float* mt, int64_t ld) {
  for (int64_t j = 0; j < n; j += kKeyStep) {
    Vec w0[R], w1[R];
    for (int r = 0; r < R; ++r) {
      w0[r] = load(w + r * w_ld + j);
      w1[r] = load(w + r * w_ld + j + kLanes);
    }
    for (int64_t d = 0; d < dim; ++d) {
      float* dst = mt + d * ld + j;
      Vec a0 = load(dst), a1 = load(dst + kLanes);
      for (int r = 0; r < R; ++r) {
        const Vec xr = splat(x[r][d]);
        a0 += xr * w0[r];
        a1 += xr * w1[r];
      }
      store(dst, a0);
      store(dst + kLanes, a1);
    }
  }
}

// Calls body(std::integral_constant<int, rows>) for rows in 1..kGroup, so that the group size is
// a compile-time constant in the kernels (their accumulators stay in registers).
template <typename Body>
void with_group_size(int rows, Body&& body) {
  switch (rows) {
    case 1:
      body(std::integral_constant<int, 1>{});
      break;
    case 2:
      body(std::integral_constant<int, 2>{});
      break;
    case 3:
      body(std::integral_constant<int, 3>{});
      break;
    default:
      body(std::integral_constant<int, 4>{});
      break;
  }
}

// Row pointers of rows order[0, rows) of a strided matrix.
template <typename P>
void row_pointers(P* base, int64_t stride, const int64_t* order, int rows, P** out) {
  for (int r = 0; r < rows; ++r) out[r] = base + order[r] * stride;
}

// The rows to compute, ascending; calls skip(i) for every inactive row i.
template <typename Skip>
std::vector<int64_t> active_rows(const RowsHead& h, const Skip& skip) {
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(h.t_q));
  for (int64_t i = 0; i < h.t_q; ++i) {
    if (h.active == nullptr || h.active[i * h.active_stride]) {
      order.push_back(i);
    } else {
      skip(i);
    }
  }
  return order;
}

// The largest visible count among rows order[0, rows).
int64_t group_prefix(const RowsHead& h, const int64_t* order, int rows) {
  int64_t n = 0;
  for (int r = 0; r < rows; ++r) n = std::max(n, h.visible[order[r]]);
  return n;
}

}  // namespace

bool rows_kernels_fit(int64_t dim, int64_t value_dim) {
  return dim > 0 && value_dim > 0 && dim % kLanes == 0 && value_dim % kLanes == 0;
}

size_t rows_forward_scratch(int64_t t_k, int64_t dim, int64_t) {
  const int64_t ld = padded(std::max<int64_t>(t_k, 1));
  return static_cast<size_t>((dim + kGroup) * ld);
}

size_t rows_backward_scratch(int64_t t_k, int64_t dim, int64_t value_dim) {
  const int64_t ld = padded(std::max<int64_t>(t_k, 1));
  return static_cast<size_t>((2 * dim + 2 * value_dim + 2 * kGroup) * ld);
}

void rows_forward(const RowsHead& h, float* out, int64_t out_stride, float* lse, float* scratch) {
  const int64_t ld = padded(std::max<int64_t>(h.t_k, 1));
  float* kt = scratch;             // [dim, ld]
  float* probs = kt + h.dim * ld;  // [kGroup, ld]
  transpose_padded(h.k, h.k_stride, h.t_k, h.dim, kt, ld);
  const std::vector<int64_t> order = active_rows(h, [&](int64_t i) {
    std::fill(out + i * out_stride, out + i * out_stride + h.value_dim, 0.0f);
    lse[i] = 0.0f;
  });
  const int64_t count = static_cast<int64_t>(order.size());
  for (int64_t start = 0; start < count; start += kGroup) {
    const int rows = static_cast<int>(std::min<int64_t>(kGroup, count - start));
    const int64_t* group = order.data() + start;
    const int64_t n = group_prefix(h, group, rows);
    float* out_rows[kGroup];
    row_pointers(out, out_stride, group, rows, out_rows);
    if (n == 0) {
      for (int r = 0; r < rows; ++r) {
        std::fill(out_rows[r], out_rows[r] + h.value_dim, 0.0f);
        lse[group[r]] = 0.0f;
      }
      continue;
    }
    const int64_t width = padded(n);
    const float* q_rows[kGroup];
    row_pointers(h.q, h.q_stride, group, rows, q_rows);
    with_group_size(rows, [&](auto group_size) {
      constexpr int R = decltype(group_size)::value;
      rows_times_transposed<R>(q_rows, h.dim, kt, ld, width, h.scale, probs, ld);
      for (int r = 0; r < R; ++r) {
        float* row = probs + r * ld;
        const int64_t seen = h.visible[group[r]];
        if (seen == 0) {
          std::fill(row, row + width, 0.0f);
          lse[group[r]] = 0.0f;
        } else {
          lse[group[r]] = softmax_visible(row, seen, width);
        }
      }
      weighted_rows<R>(probs, ld, n, h.v, h.v_stride, h.value_dim, 1.0f, out_rows);
    });
  }
}

void rows_backward(const RowsHead& h, const float* out, int64_t out_stride, const float* grad_out,
                   int64_t grad_out_stride, const float* lse, float* grad_q, int64_t grad_q_stride,
                   float* grad_k, int64_t grad_k_stride, float* grad_v, int64_t grad_v_stride,
                   float* scratch) {
  const int64_t ld = padded(std::max<int64_t>(h.t_k, 1));
  float* kt = scratch;                        // [dim, ld]
  float* vt = kt + h.dim * ld;                // [value_dim, ld]
  float* grad_kt = vt + h.value_dim * ld;     // [dim, ld]
  float* grad_vt = grad_kt + h.dim * ld;      // [value_dim, ld]
  float* probs = grad_vt + h.value_dim * ld;  // [kGroup, ld]
  float* grad_scores = probs + kGroup * ld;   // [kGroup, ld]
  transpose_padded(h.k, h.k_stride, h.t_k, h.dim, kt, ld);
  transpose_padded(h.v, h.v_stride, h.t_k, h.value_dim, vt, ld);
  std::fill(grad_kt, grad_kt + (h.dim + h.value_dim) * ld, 0.0f);
  const std::vector<int64_t> order = active_rows(h, [&](int64_t i) {
    std::fill(grad_q + i * grad_q_stride, grad_q + i * grad_q_stride + h.dim, 0.0f);
  });
  const int64_t count = static_cast<int64_t>(order.size());
  for (int64_t start = 0; start < count; start += kGroup) {
    const int rows = static_cast<int>(std::min<int64_t>(kGroup, count - start));
    const int64_t* group = order.data() + start;
    const int64_t n = group_prefix(h, group, rows);
    float* grad_q_rows[kGroup];
    row_pointers(grad_q, grad_q_stride, group, rows, grad_q_rows);
    if (n == 0) {
      for (int r = 0; r < rows; ++r) std::fill(grad_q_rows[r], grad_q_rows[r] + h.dim, 0.0f);
      continue;
    }
    const int64_t width = padded(n);
    const float *q_rows[kGroup], *grad_out_rows[kGroup], *out_rows[kGroup];
    row_pointers(h.q, h.q_stride, group, rows, q_rows);
    row_pointers(grad_out, grad_out_stride, group, rows, grad_out_rows);
    row_pointers(out, out_stride, group, rows, out_rows);
    with_group_size(rows, [&](auto group_size) {
      constexpr int R = decltype(group_size)::value;
      rows_times_transposed<R>(q_rows, h.dim, kt, ld, width, h.scale, probs, ld);
      rows_times_transposed<R>(grad_out_rows, h.value_dim, vt, ld, width, 1.0f, grad_scores, ld);
      for (int r = 0; r < R; ++r) {
        float* p = probs + r * ld;
        probs_from_lse(p, h.visible[group[r]], width, lse[group[r]]);
        // δ = Σ_j P_j dP_j = dO · O for a softmax row; dS = P ∘ (dP − δ) (0 where P is 0).
        const float delta = dot(grad_out_rows[r], out_rows[r], h.value_dim);
        softmax_backward_row(p, grad_scores + r * ld, width, delta);
      }
      weighted_rows<R>(grad_scores, ld, n, h.k, h.k_stride, h.dim, h.scale, grad_q_rows);
      accumulate_outer<R>(q_rows, h.dim, grad_scores, ld, width, grad_kt, ld);
      accumulate_outer<R>(grad_out_rows, h.value_dim, probs, ld, width, grad_vt, ld);
    });
  }
  for (int64_t j = 0; j < h.t_k; ++j) {
    float* gk = grad_k + j * grad_k_stride;
    float* gv = grad_v + j * grad_v_stride;
    for (int64_t c = 0; c < h.dim; ++c) gk[c] = h.scale * grad_kt[c * ld + j];
    for (int64_t c = 0; c < h.value_dim; ++c) gv[c] = grad_vt[c * ld + j];
  }
}

}  // namespace attnlab::kernels
