// Autograd wrapper and dispatch for the fused RoPE rotate-half kernel; see rope_rotate.h.
#include "modules/kernels/rope_rotate.h"

#include <ATen/Parallel.h>

#include "modules/kernels/rope_rotate_simd.h"

namespace attnlab {

namespace {

// cos and sin of positions[t] · inv_freq[j], [T, D/2] float32, evaluated in float64.
std::pair<torch::Tensor, torch::Tensor> angle_tables(const torch::Tensor& positions,
                                                     const torch::Tensor& inv_freq) {
  auto angles =
      positions.to(torch::kDouble).unsqueeze(1) * inv_freq.to(torch::kDouble).unsqueeze(0);
  return {angles.cos().to(torch::kFloat).contiguous(), angles.sin().to(torch::kFloat).contiguous()};
}

// Rotates every [D] row of `in` into the same row of `out` (both [B, H, T, D], unit stride along
// D, any other strides), splitting the B·H·T rows over LibTorch's intra-op threads; each call of
// the kernel covers a run of consecutive t within one (b, h).
void rotate(const torch::Tensor& in, const torch::Tensor& out, const torch::Tensor& cos,
            const torch::Tensor& sin, bool inverse) {
  const int64_t heads = in.size(1), length = in.size(2), dim = in.size(3), half = dim / 2;
  const float* in_data = in.data_ptr<float>();
  float* out_data = out.data_ptr<float>();
  const float* cos_data = cos.data_ptr<float>();
  const float* sin_data = sin.data_ptr<float>();
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / dim);
  at::parallel_for(0, in.size(0) * heads * length, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end;) {
      const int64_t bh = row / length, t = row % length, b = bh / heads, h = bh % heads;
      const int64_t count = std::min(length - t, end - row);
      kernels::rope_rotate_half_simd(
          in_data + b * in.stride(0) + h * in.stride(1) + t * in.stride(2), in.stride(2),
          out_data + b * out.stride(0) + h * out.stride(1) + t * out.stride(2), out.stride(2),
          cos_data + t * half, sin_data + t * half, count, half, inverse);
      row += count;
    }
  });
}

torch::Tensor unit_last_stride(const torch::Tensor& t) {
  return t.stride(-1) == 1 ? t : t.contiguous();
}

class RopeRotateHalfFunction : public torch::autograd::Function<RopeRotateHalfFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& positions, const torch::Tensor& inv_freq) {
    auto input = unit_last_stride(x);
    TORCH_CHECK(inv_freq.numel() * 2 == input.size(3), "RoPE: ", inv_freq.numel(),
                " frequencies for head size ", input.size(3));
    auto [cos, sin] = angle_tables(positions, inv_freq);
    auto out = torch::empty(input.sizes(), input.options());
    rotate(input, out, cos, sin, /*inverse=*/false);
    ctx->save_for_backward({cos, sin});
    // grad_x gets x's memory layout when that is dense with unit stride along D (the usual
    // transposed [B, T, H, D] projection), so that the view and transpose in front of the
    // rotation cost no copy; a contiguous layout otherwise.
    std::vector<int64_t> strides = x.strides().vec();
    if (!x.is_non_overlapping_and_dense() || x.stride(3) != 1) {
      int64_t step = 1;
      for (int64_t d = 3; d >= 0; --d) {
        strides[d] = step;
        step *= x.size(d);
      }
    }
    ctx->saved_data["strides"] = strides;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    if (!grads[0].defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    auto saved = ctx->get_saved_variables();
    auto grad_out = unit_last_stride(grads[0]);
    auto strides = ctx->saved_data["strides"].toIntVector();
    auto grad_x = torch::empty_strided(grad_out.sizes(), strides, grad_out.options());
    rotate(grad_out, grad_x, saved[0], saved[1], /*inverse=*/true);
    return {grad_x, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool rope_rotate_half_supported(const torch::Tensor& x, const torch::Tensor& positions) {
  static const bool available = kernels::rope_rotate_simd_available();
  return available && x.device().is_cpu() && x.scalar_type() == torch::kFloat && x.dim() == 4 &&
         x.numel() > 0 && x.size(3) % 2 == 0 && positions.device().is_cpu() &&
         positions.dim() == 1 && positions.size(0) == x.size(2) && !positions.is_complex();
}

torch::Tensor rope_rotate_half(const torch::Tensor& x, const torch::Tensor& positions,
                               const torch::Tensor& inv_freq) {
  TORCH_CHECK(rope_rotate_half_supported(x, positions),
              "rope_rotate_half: needs a float32 CPU [B, H, T, D] input and [T] CPU positions");
  return RopeRotateHalfFunction::apply(x, positions, inv_freq);
}

}  // namespace attnlab
