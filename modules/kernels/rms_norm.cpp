// Autograd wrapper and dispatch for the fused RMSNorm kernels; see rms_norm.h.
#include "modules/kernels/rms_norm.h"

#include <ATen/Parallel.h>

#include "modules/kernels/rms_norm_simd.h"

namespace attnlab {

namespace {

bool use_simd(const torch::Tensor& x, const torch::Tensor& weight) {
  static const bool available = kernels::rms_norm_simd_available();
  return available && x.device().is_cpu() && x.scalar_type() == torch::kFloat &&
         weight.device().is_cpu() && weight.scalar_type() == torch::kFloat && weight.dim() == 1 &&
         x.dim() >= 1 && x.size(-1) == weight.size(0) && x.numel() > 0;
}

torch::Tensor rms_norm_torch(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  // Normalise in float32 at least (bf16 autocast inputs), then cast back.
  auto xf = x.scalar_type() == torch::kDouble ? x : x.to(torch::kFloat);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return (normed * weight).to(x.scalar_type());
}

// Rows per work item: ~32K floats, enough to amortise a task. The backward's grad_weight partial
// sums use the same fixed blocks, so its summation order depends on the shape only.
int64_t rows_per_block(int64_t dim) { return std::max<int64_t>(1, (int64_t{1} << 15) / dim); }

class RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, double eps) {
    auto input = x.contiguous();
    auto w = weight.contiguous();
    const int64_t dim = input.size(-1), rows = input.numel() / dim;
    auto y = torch::empty_like(input);
    auto inv_rms = torch::empty({rows}, input.options());
    const float* in = input.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    float* out = y.data_ptr<float>();
    float* inv = inv_rms.data_ptr<float>();
    at::parallel_for(0, rows, rows_per_block(dim), [&](int64_t begin, int64_t end) {
      kernels::rms_norm_forward_simd(in + begin * dim, wp, out + begin * dim, inv + begin,
                                     end - begin, dim, eps);
    });
    ctx->save_for_backward({input, w, inv_rms});
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    if (!grads[0].defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    auto saved = ctx->get_saved_variables();
    const auto &input = saved[0], &w = saved[1], &inv_rms = saved[2];
    auto grad_y = grads[0].contiguous();
    const int64_t dim = input.size(-1), rows = input.numel() / dim;
    const int64_t block = rows_per_block(dim), n_blocks = (rows + block - 1) / block;
    const bool want_x = ctx->needs_input_grad(0), want_w = ctx->needs_input_grad(1);
    torch::Tensor grad_x = want_x ? torch::empty_like(input) : torch::Tensor();
    auto partials = want_w ? torch::empty({n_blocks, dim}, input.options()) : torch::Tensor();
    const float* in = input.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    const float* inv = inv_rms.data_ptr<float>();
    const float* gy = grad_y.data_ptr<float>();
    float* gx = want_x ? grad_x.data_ptr<float>() : nullptr;
    float* part = want_w ? partials.data_ptr<float>() : nullptr;
    at::parallel_for(0, n_blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t first = b * block, count = std::min(block, rows - first);
        kernels::rms_norm_backward_simd(in + first * dim, wp, inv + first, gy + first * dim,
                                        gx ? gx + first * dim : nullptr,
                                        part ? part + b * dim : nullptr, count, dim);
      }
    });
    torch::Tensor grad_w;
    if (want_w) {
      grad_w = torch::empty({dim}, input.options());
      kernels::sum_partials_simd(part, n_blocks, dim, grad_w.data_ptr<float>());
    }
    return {grad_x, grad_w, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (!use_simd(x, weight)) return rms_norm_torch(x, weight, eps);
  return RmsNormFunction::apply(x, weight, eps);
}

}  // namespace attnlab
