// Benchmark: training throughput and MFU on one device, for scripts/gpu_check.sh's speed report
// (issue #14, "GPU path"). Each model is composed from the shipped configs/ exactly as
// `attnlab train` would build it (model.*, attention=<option>, model.mask), trained for a few
// AdamW steps on random tokens (forward under bf16 autocast on CUDA, float32 on CPU), and timed
// after a warm-up. MFU is against the matmul peak measured in the same run, in the dtype the
// matmuls run in (bf16 on CUDA, float32 on CPU), so the numbers say how close a step comes to the
// device's own ceiling. Output: JSON lines on stdout, one "peak" line and one "speed" line per
// model; human notes go to stderr.
//   bench_gpu_speed [--device cuda|cpu] [--preset gpu|cpu] [--steps N] [--warmup N]
//                   [--threads N] [--only NAME,...] [key=value ...]
// --preset gpu (default on CUDA): the default experiment's model (d 128, 4 layers, 4 heads,
// T 256, B 16), GPT-2 small (12 layers, d 768, 12 heads, T 1024, vocab 50304) and MHA / MoH /
// block-causal MHA at T 2048. --preset cpu: the same shapes shrunk to run in seconds on 2 cores.
// --threads: CPU threads (default 1). key=value: extra config overrides applied to every model
// (e.g. model.attention_backend=sdpa).
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "modules/gpt.h"
#include "trainer/autocast.h"
#include "trainer/mfu.h"

using namespace attnlab;

namespace {

struct Case {
  std::string name;       // row label in the report
  std::string attention;  // attention=<option>
  std::string mask;       // causal | block_causal
  int64_t block_size, d_model, n_layers, n_heads, seq_len, batch, vocab;
};

std::vector<Case> preset_cases(const std::string& preset) {
  if (preset == "gpu")
    return {
        {"default", "mha", "causal", 0, 128, 4, 4, 256, 16, 260},
        {"gpt2_small", "mha", "causal", 0, 768, 12, 12, 1024, 16, 50304},
        {"long_mha", "mha", "causal", 0, 512, 8, 8, 2048, 8, 260},
        {"long_moh", "moh", "causal", 0, 512, 8, 8, 2048, 8, 260},
        {"long_block_causal", "mha", "block_causal", 64, 512, 8, 8, 2048, 8, 260},
    };
  return {
      {"default", "mha", "causal", 0, 64, 2, 2, 64, 4, 260},
      {"gpt2_small", "mha", "causal", 0, 96, 3, 3, 128, 2, 1024},
      {"long_mha", "mha", "causal", 0, 64, 2, 4, 256, 2, 260},
      {"long_moh", "moh", "causal", 0, 64, 2, 4, 256, 2, 260},
      {"long_block_causal", "mha", "block_causal", 16, 64, 2, 4, 256, 2, 260},
  };
}

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr,
               "error: %s\nusage: bench_gpu_speed [--device cuda|cpu] [--preset gpu|cpu] "
               "[--steps N] [--warmup N] [--threads N] [--only NAME,...] [key=value ...]\n",
               message.c_str());
  std::exit(2);
}

void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

std::string dtype_name(torch::ScalarType dtype) {
  return dtype == torch::kBFloat16 ? "bfloat16" : "float32";
}

}  // namespace

int main(int argc, char** argv) {
  std::string device_name = torch::cuda::is_available() ? "cuda" : "cpu";
  std::string preset, only;
  int64_t steps = -1, warmup = -1, threads = 1;
  std::vector<std::string> extra;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--device")
      device_name = value();
    else if (arg == "--preset")
      preset = value();
    else if (arg == "--steps")
      steps = std::atoll(value().c_str());
    else if (arg == "--warmup")
      warmup = std::atoll(value().c_str());
    else if (arg == "--threads")
      threads = std::atoll(value().c_str());
    else if (arg == "--only")
      only = "," + value() + ",";
    else if (arg.find('=') != std::string::npos && arg[0] != '-')
      extra.push_back(arg);
    else
      usage_error("unknown argument '" + arg + "'");
  }
  if (device_name != "cuda" && device_name != "cpu")
    usage_error("--device must be cuda or cpu, not '" + device_name + "'");
  if (device_name == "cuda" && !torch::cuda::is_available())
    usage_error("--device cuda: no CUDA device is visible");
  const torch::Device device(device_name == "cuda" ? torch::kCUDA : torch::kCPU);
  const bool cuda = device.is_cuda();
  if (preset.empty()) preset = cuda ? "gpu" : "cpu";
  if (preset != "gpu" && preset != "cpu")
    usage_error("--preset must be gpu or cpu, not '" + preset + "'");
  if (steps < 0) steps = preset == "gpu" ? 20 : 3;
  if (warmup < 0) warmup = preset == "gpu" ? 3 : 2;
  if (steps < 1) usage_error("--steps must be at least 1");
  // One CPU thread by default: the tiny CPU shapes gain little from more, and a second thread
  // on a busy 2-core machine (CI) turns every step into a wait at an OpenMP barrier.
  if (threads < 1) usage_error("--threads must be at least 1");
  if (!cuda) torch::set_num_threads(static_cast<int>(threads));

  // The peak the MFU is measured against: bf16 on CUDA (what autocast's matmuls run in).
  const torch::ScalarType peak_dtype = cuda ? torch::kBFloat16 : torch::kFloat32;
  const MatmulPeak peak = cuda ? measure_matmul_peak(device, 8192, 10, 3.0, peak_dtype)
                               : measure_matmul_peak(device, 512, 10, 1.0, peak_dtype);
  nlohmann::json peak_line = {{"kind", "peak"},
                              {"device", device_name},
                              {"dtype", dtype_name(peak_dtype)},
                              {"n", peak.n},
                              {"repeats", peak.repeats},
                              {"tflops", peak.flops_per_s / 1e12},
                              {"threads", cuda ? 0 : at::get_num_threads()}};
  std::cout << peak_line.dump() << std::endl;

  int failures = 0;
  for (const Case& c : preset_cases(preset)) {
    if (!only.empty() && only.find("," + c.name + ",") == std::string::npos) continue;
    nlohmann::json line = {{"kind", "speed"},
                           {"name", c.name},
                           {"device", device_name},
                           {"attention", c.attention},
                           {"mask", c.mask},
                           {"block_size", c.block_size},
                           {"d_model", c.d_model},
                           {"n_layers", c.n_layers},
                           {"n_heads", c.n_heads},
                           {"seq_len", c.seq_len},
                           {"batch", c.batch},
                           {"vocab", c.vocab},
                           {"steps", steps},
                           {"warmup", warmup},
                           {"autocast_bf16", cuda},
                           {"optimizer", "adamw"},
                           {"peak_dtype", dtype_name(peak_dtype)}};
    try {
      config::ComposeRequest request;
      request.config_dir = std::string(ATTNLAB_SOURCE_DIR) + "/configs";
      request.overrides = {"attention=" + c.attention,
                           "model.mask=" + c.mask,
                           "model.block_size=" + std::to_string(c.block_size),
                           "model.d_model=" + std::to_string(c.d_model),
                           "model.n_layers=" + std::to_string(c.n_layers),
                           "model.n_heads=" + std::to_string(c.n_heads),
                           "model.max_seq_len=" + std::to_string(c.seq_len),
                           "data.seq_len=" + std::to_string(c.seq_len)};
      request.overrides.insert(request.overrides.end(), extra.begin(), extra.end());
      const YAML::Node config = config::compose(request);
      torch::manual_seed(0);
      Gpt model(gpt_options_from_config(config, c.vocab));
      model->to(device);
      model->train();
      const int64_t vocab = model->options().vocab_size;
      torch::optim::AdamW optimizer(
          model->parameters(),
          torch::optim::AdamWOptions(3e-4).betas({0.9, 0.95}).weight_decay(0.1));
      auto tokens = torch::randint(0, vocab, {c.batch, c.seq_len + 1},
                                   torch::TensorOptions().dtype(torch::kLong).device(device));
      auto input = tokens.narrow(1, 0, c.seq_len), target = tokens.narrow(1, 1, c.seq_len);
      double last_loss = 0.0;
      auto step = [&] {
        for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
        torch::Tensor loss;
        {
          AutocastGuard autocast(cuda, device);
          ModelOutput out = model->forward(input);
          loss = torch::nn::functional::cross_entropy(
              out.logits.reshape({-1, vocab}).to(torch::kFloat32), target.reshape({-1}));
          for (auto& [name, aux] : out.aux_losses) loss = loss + aux.to(torch::kFloat32);
        }
        loss.backward();
        optimizer.step();
        return loss;
      };
      for (int64_t i = 0; i < warmup; ++i) step();
      sync(device);
      torch::Tensor loss;
      const auto start = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < steps; ++i) loss = step();
      sync(device);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      last_loss = loss.item<double>();
      const double tokens_per_s = static_cast<double>(c.batch * c.seq_len * steps) / seconds;
      const double flops_per_token = gpt_flops_per_token(*model, c.seq_len);
      int64_t params = 0;
      for (const auto& p : model->parameters()) params += p.numel();
      line["params"] = params;
      line["flops_per_token"] = flops_per_token;
      line["tokens_per_s"] = tokens_per_s;
      line["step_ms"] = seconds / steps * 1e3;
      line["mfu"] = compute_mfu(flops_per_token, tokens_per_s, peak.flops_per_s);
      line["tflops"] = flops_per_token * tokens_per_s / 1e12;
      line["loss"] = last_loss;
      line["ok"] = std::isfinite(last_loss) && tokens_per_s > 0;
      if (!line["ok"].get<bool>()) ++failures;
    } catch (const std::exception& e) {
      std::string message = e.what();
      message = message.substr(0, message.find('\n'));
      line["ok"] = false;
      line["error"] = message;
      ++failures;
    }
    std::cout << line.dump() << std::endl;
  }
  return failures == 0 ? 0 : 1;
}
