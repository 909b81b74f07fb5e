// Implementation of mfu.h.
#include "trainer/mfu.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace attnlab {
namespace {

void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

}  // namespace

MatmulPeak measure_matmul_peak(const torch::Device& device, int64_t n, int64_t max_repeats,
                               double budget_s, torch::ScalarType dtype) {
  using clock = std::chrono::steady_clock;
  MatmulPeak peak;
  peak.n = n > 0 ? n : (device.is_cpu() ? 1024 : 4096);
  auto options = torch::TensorOptions().dtype(dtype).device(device);
  torch::NoGradGuard no_grad;
  auto a = torch::randn({peak.n, peak.n}, options);
  auto b = torch::randn({peak.n, peak.n}, options);
  auto c = torch::empty({peak.n, peak.n}, options);
  const double flops = 2.0 * static_cast<double>(peak.n) * peak.n * peak.n;
  auto begin = clock::now();
  // Warm-up: thread pool start, BLAS buffers, GPU kernels, CPU frequency ramp.
  for (int warm = 0; warm < 2; ++warm) torch::matmul_out(c, a, b);
  sync(device);
  for (int64_t i = 0; i < std::max<int64_t>(1, max_repeats); ++i) {
    auto t0 = clock::now();
    torch::matmul_out(c, a, b);
    sync(device);
    double dt = std::chrono::duration<double>(clock::now() - t0).count();
    peak.flops_per_s = std::max(peak.flops_per_s, flops / std::max(dt, 1e-9));
    ++peak.repeats;
    if (std::chrono::duration<double>(clock::now() - begin).count() > budget_s) break;
  }
  peak.seconds = std::chrono::duration<double>(clock::now() - begin).count();
  return peak;
}

double compute_mfu(double flops_per_token, double tokens_per_s, double peak_flops_per_s) {
  if (peak_flops_per_s <= 0) return -1.0;
  return flops_per_token * tokens_per_s / peak_flops_per_s;
}

MfuMeter::MfuMeter(const MatmulPeak& peak, int64_t world_size, const std::string& dtype)
    : peak_(peak),
      world_size_(std::max<int64_t>(1, world_size)),
      dtype_(dtype),
      peak_total_(peak.flops_per_s * static_cast<double>(std::max<int64_t>(1, world_size))) {}

double MfuMeter::share(double flops_per_token, double tokens_per_s, std::string* note) {
  if (peak_total_ <= 0) return -1.0;
  const double achieved = flops_per_token * tokens_per_s;
  if (achieved > peak_total_) {
    if (!raised_ && note != nullptr) {
      char text[256];
      std::snprintf(text, sizeof(text),
                    "note: the model ran at %.1f GFLOP/s, above the %s; MFU is against the best "
                    "rate seen from here on",
                    achieved / 1e9, describe().c_str());
      *note = text;
    }
    raised_ = true;
    peak_total_ = achieved;
  }
  return compute_mfu(flops_per_token, tokens_per_s, peak_total_);
}

std::string MfuMeter::describe() const {
  char text[192];
  std::snprintf(text, sizeof(text), "%s %lldx%lld matmul peak measured at start: %.1f GFLOP/s",
                dtype_.c_str(), static_cast<long long>(peak_.n), static_cast<long long>(peak_.n),
                peak_.flops_per_s / 1e9);
  std::string out = text;
  if (world_size_ > 1) out += " per process, x" + std::to_string(world_size_) + " processes";
  return out;
}

}  // namespace attnlab
