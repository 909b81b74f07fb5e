// RAII bf16 autocast for the forward pass (`trainer.autocast_bf16`): CPU autocast on CPU, CUDA
// autocast on GPUs. Parameters and optimizer state stay float32; only eligible ops run in bf16.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

namespace attnlab {

class AutocastGuard {
 public:
  AutocastGuard(bool enabled, const torch::Device& device) : enabled_(enabled), cuda_(device.is_cuda()) {
    if (!enabled_) return;
    if (cuda_) {
      previous_ = at::autocast::is_enabled();
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      previous_ = at::autocast::is_cpu_enabled();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    if (cuda_)
      at::autocast::set_enabled(previous_);
    else
      at::autocast::set_cpu_enabled(previous_);
    at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_, cuda_, previous_ = false;
};

}  // namespace attnlab
