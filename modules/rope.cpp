// RoPE at absolute positions; see rope.h.
#include "modules/rope.h"

#include "modules/kernels/rope_rotate.h"

namespace attnlab {

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta,
                         RopeStyle style) {
  const int64_t dim = x.size(-1);
  TORCH_CHECK(dim % 2 == 0, "RoPE needs an even head dimension, got ", dim);
  // Fused kernel (one pass forward and backward) for float32 CPU inputs; the formula below else.
  if (style == RopeStyle::kRotateHalf && rope_rotate_half_supported(x, positions))
    return rope_rotate_half(x, positions, theta);
  auto compute_dtype = x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto options = torch::TensorOptions().dtype(compute_dtype).device(x.device());
  auto inv_freq =
      torch::pow(theta, -torch::arange(0, dim, 2, options) / static_cast<double>(dim));  // [D/2]
  auto angles = positions.to(compute_dtype).unsqueeze(1) * inv_freq.unsqueeze(0);        // [T, D/2]
  auto cos = angles.cos();
  auto sin = angles.sin();
  auto xf = x.to(compute_dtype);
  torch::Tensor out;
  if (style == RopeStyle::kRotateHalf) {
    auto x1 = xf.narrow(-1, 0, dim / 2);
    auto x2 = xf.narrow(-1, dim / 2, dim / 2);
    out = torch::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1);
  } else {
    auto pairs = xf.unflatten(-1, {dim / 2, 2});
    auto x1 = pairs.select(-1, 0);
    auto x2 = pairs.select(-1, 1);
    out = torch::stack({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1).flatten(-2);
  }
  return out.to(x.scalar_type());
}

}  // namespace attnlab
