// Implementation of mfu.h.
#include "trainer/mfu.h"

#include <algorithm>
#include <chrono>

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
  torch::matmul_out(c, a, b);  // warm-up: thread pool start, BLAS buffers, GPU kernels
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

}  // namespace attnlab
