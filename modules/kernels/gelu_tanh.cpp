// Autograd wrapper and dispatch for the fused GELU-tanh kernels; see gelu_tanh.h.
#include "modules/kernels/gelu_tanh.h"

#include <ATen/Parallel.h>

#include "modules/kernels/gelu_tanh_simd.h"

namespace attnlab {

namespace {

bool use_simd(const torch::Tensor& x) {
  static const bool available = kernels::gelu_tanh_simd_available();
  return available && x.device().is_cpu() && x.scalar_type() == torch::kFloat;
}

// Splits n elements over LibTorch's intra-op threads; chunks stay large enough to amortise.
template <typename Kernel>
void parallel_elementwise(int64_t n, const Kernel& kernel) {
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) { kernel(begin, end - begin); });
}

class GeluTanhFunction : public torch::autograd::Function<GeluTanhFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    auto input = x.contiguous();
    ctx->save_for_backward({input});
    auto y = torch::empty_like(input);
    const float* in = input.data_ptr<float>();
    float* out = y.data_ptr<float>();
    parallel_elementwise(input.numel(), [&](int64_t offset, int64_t count) {
      kernels::gelu_tanh_forward_simd(in + offset, out + offset, count);
    });
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    if (!grads[0].defined()) return {torch::Tensor()};
    auto input = ctx->get_saved_variables()[0];
    auto grad_y = grads[0].contiguous();
    auto grad_x = torch::empty_like(input);
    const float* in = input.data_ptr<float>();
    const float* gy = grad_y.data_ptr<float>();
    float* gx = grad_x.data_ptr<float>();
    parallel_elementwise(input.numel(), [&](int64_t offset, int64_t count) {
      kernels::gelu_tanh_backward_simd(in + offset, gy + offset, gx + offset, count);
    });
    return {grad_x};
  }
};

}  // namespace

torch::Tensor gelu_tanh(const torch::Tensor& x) {
  if (!use_simd(x)) return torch::gelu(x, "tanh");
  return GeluTanhFunction::apply(x);
}

}  // namespace attnlab
