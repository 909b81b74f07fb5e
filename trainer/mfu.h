// Model FLOPs utilisation. Instead of a vendor peak table (llm.c / nanoGPT use A100's 312 TFLOPS),
// the peak is *measured* at start-up: the best FLOP/s of a few n×n×n matmuls on the training
// device with the configured thread count (< ~1 s), in float32 by default or in the dtype the
// model computes in (bf16 under CUDA autocast: scripts/gpu_check.sh's speed report). MFU = achieved
// model FLOP/s / that peak — honest on any CPU or GPU, and comparable across runs on the same
// machine. Model FLOPs per token come from the model (gpt_flops_per_token: PaLM 6N + 12·L·T·C,
// forward + backward).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace attnlab {

struct MatmulPeak {
  double flops_per_s = 0.0;  // best observed
  int64_t n = 0;             // matrix size used
  int64_t repeats = 0;       // timed matmuls
  double seconds = 0.0;      // wall time spent measuring
};

// Times n×n matmuls of `dtype` on `device` (warm-up + best of up to max_repeats, stopping early
// once `budget_s` seconds are spent). n = 0 picks 1024 on CPU and 4096 on accelerators.
MatmulPeak measure_matmul_peak(const torch::Device& device, int64_t n = 0, int64_t max_repeats = 5,
                               double budget_s = 0.8, torch::ScalarType dtype = torch::kFloat32);

// FLOP/s achieved when processing tokens_per_s tokens at flops_per_token each, over the peak.
double compute_mfu(double flops_per_token, double tokens_per_s, double peak_flops_per_s);

// A run's MFU: against the start-up peak of every process together, raised to the best model
// FLOP/s seen when a step outruns it. A peak measured while the machine was busy is too low, and
// a share above 100% would be no utilisation at all; the first time the peak is raised, share()
// says so in `note` (once), and describe() names the peak in use.
class MfuMeter {
 public:
  MfuMeter(const MatmulPeak& peak, int64_t world_size, const std::string& dtype = "float32");
  // The share of one step (-1 when no peak was measured); at most 1.
  double share(double flops_per_token, double tokens_per_s, std::string* note);
  // "float32 1024x1024 matmul peak measured at start: 145.2 GFLOP/s (x2 processes)"
  std::string describe() const;

 private:
  MatmulPeak peak_;
  int64_t world_size_ = 1;
  std::string dtype_;
  double peak_total_ = 0.0;  // FLOP/s of all processes
  bool raised_ = false;
};

}  // namespace attnlab
