// RAII bf16 autocast for the forward pass (`trainer.autocast_bf16`) on the model's device type
// (CPU autocast on the CPU, CUDA autocast on GPUs). Parameters and optimizer state stay float32;
// only eligible ops run in bf16. The previous state (enabled flag and dtype) is restored.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

namespace attnlab {

class AutocastGuard {
 public:
  AutocastGuard(bool enabled, const torch::Device& device)
      : enabled_(enabled), type_(device.type()) {
    if (!enabled_) return;
    previous_enabled_ = at::autocast::is_autocast_enabled(type_);
    previous_dtype_ = at::autocast::get_autocast_dtype(type_);
    at::autocast::set_autocast_dtype(type_, at::kBFloat16);
    at::autocast::set_autocast_enabled(type_, true);
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    at::autocast::set_autocast_enabled(type_, previous_enabled_);
    at::autocast::set_autocast_dtype(type_, previous_dtype_);
    at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  c10::DeviceType type_;
  bool previous_enabled_ = false;
  c10::ScalarType previous_dtype_ = at::kBFloat16;
};

}  // namespace attnlab
