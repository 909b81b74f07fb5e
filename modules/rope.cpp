// RoPE at absolute positions; see rope.h.
#include "modules/rope.h"

#include "modules/kernels/rope_rotate.h"

namespace attnlab {

namespace {

// The inverse frequencies computed on `device` itself: on a GPU, building them on the CPU and
// copying them over would be a synchronising host-to-device copy in every layer's forward.
torch::Tensor inverse_frequencies_on(int64_t dim, double theta, const RopeScaling& scaling,
                                     const torch::Device& device) {
  auto options = torch::TensorOptions().dtype(torch::kDouble).device(device);
  auto inv_freq = torch::pow(theta, -torch::arange(0, dim, 2, options) / static_cast<double>(dim));
  if (scaling.type == "linear") return inv_freq / scaling.factor;
  if (scaling.type != "llama3") return inv_freq;
  // transformers' _compute_llama3_parameters, in float64.
  const double low_wavelen = scaling.original_max_positions / scaling.low_freq_factor;
  const double high_wavelen = scaling.original_max_positions / scaling.high_freq_factor;
  auto wavelen = 2.0 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_wavelen, inv_freq / scaling.factor, inv_freq);
  auto smooth = (scaling.original_max_positions / wavelen - scaling.low_freq_factor) /
                (scaling.high_freq_factor - scaling.low_freq_factor);
  auto smoothed = (1.0 - smooth) * scaled / scaling.factor + smooth * scaled;
  auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return torch::where(medium, smoothed, scaled);
}

}  // namespace

torch::Tensor rope_inverse_frequencies(int64_t dim, double theta, const RopeScaling& scaling) {
  return inverse_frequencies_on(dim, theta, scaling, torch::Device(torch::kCPU));
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta,
                         RopeStyle style, const RopeScaling& scaling) {
  const int64_t dim = x.size(-1);
  TORCH_CHECK(dim % 2 == 0, "RoPE needs an even head dimension, got ", dim);
  const torch::Tensor inv_freq64 =
      inverse_frequencies_on(dim, theta, scaling, x.device());  // [D/2]
  // Fused kernel (one pass forward and backward) for float32 CPU inputs; the formula below else.
  if (style == RopeStyle::kRotateHalf && rope_rotate_half_supported(x, positions))
    return rope_rotate_half(x, positions, inv_freq64);
  auto compute_dtype = x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto inv_freq = inv_freq64.to(compute_dtype);
  auto angles = positions.to(compute_dtype).unsqueeze(1) * inv_freq.unsqueeze(0);  // [T, D/2]
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
