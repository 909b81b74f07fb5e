// Every attention module and loss, forward and backward on the check device against the same
// computation on the CPU in float64: a tiny GPT per case is built from the shipped configs, its
// weights copied to the device in float32, one training-mode objective step is run on the same
// batch, and the total loss, each logged term and every parameter's gradient are compared
// (float32 tolerances). The check device is ATTNLAB_CHECK_DEVICE (default cuda): on a machine
// without a GPU these tests skip and say so; scripts/gpu_check.sh --cpu runs them with
// ATTNLAB_CHECK_DEVICE=cpu and model.attention_backend=sdpa, i.e. the device code path on the CPU.
// With a GPU, one more test runs MHA, MoH and block-causal steps under CUDA's sync-debug mode set
// to error, proving the attention path makes no host round trip.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "device/cuda_device.h"
#include "losses/loss_set.h"
#include "modules/gpt.h"
#include "tests/support/train_runs.h"
#include "trainer/objective.h"
#include "trainer/run_setup.h"

#if __has_include(<c10/cuda/CUDAFunctions.h>)
#include <c10/cuda/CUDAFunctions.h>
#define ATTNLAB_TEST_SYNC_DEBUG 1
#endif

using namespace attnlab;

namespace {

constexpr int64_t kVocab = 48;  // the last id is [MASK] for the diffusion objective

torch::Device check_device() {
  const char* name = std::getenv("ATTNLAB_CHECK_DEVICE");
  return torch::Device(name != nullptr && *name != '\0' ? name : "cuda");
}

// Empty when the device can run; else why not (printed by GTEST_SKIP).
std::string unavailable_reason(const torch::Device& device) {
  if (device.is_cuda() && cuda_device_count() == 0)
    return "no CUDA GPU is visible (set ATTNLAB_CHECK_DEVICE=cpu to run the device code path on "
           "the CPU, as scripts/gpu_check.sh --cpu does)";
  return "";
}

struct Case {
  std::string name;
  std::vector<std::string> overrides;
};

std::vector<Case> cases() {
  return {
      {"mha", {"attention=mha"}},
      {"mha_gqa", {"attention=mha", "model.n_kv_heads=2"}},
      {"mha_block_causal", {"attention=mha", "model.mask=block_causal", "model.block_size=4"}},
      {"mha_bidirectional", {"attention=mha", "model.mask=bidirectional"}},
      {"moh", {"attention=moh"}},
      {"diff", {"attention=diff"}},
      {"gda", {"attention=gda"}},
      {"lssa", {"attention=lssa"}},
      {"lssar", {"attention=lssar"}},
      {"hybrid", {"model.attention_per_layer=[mha,moh]"}},
      {"focal", {"attention=mha", "loss=focal"}},
      {"decorrelation", {"attention=mha", "loss=decorrelation"}},
      {"segregation", {"attention=mha", "loss=segregation"}},
      {"masked_diffusion",
       {"attention=mha", "objective=masked_diffusion", "model.mask=block_causal",
        "model.block_size=4"}},
      {"masked_diffusion_clean_context",
       {"attention=mha", "objective=masked_diffusion", "model.mask=block_causal",
        "model.block_size=4", "objective.clean_context=true"}},
  };
}

YAML::Node case_config(const Case& c, const std::string& backend) {
  std::vector<std::string> overrides = {"model.d_model=32",   "model.n_layers=2",
                                        "model.n_heads=4",    "model.max_seq_len=16",
                                        "model.dropout=0.0",  "model.attention_backend=" + backend,
                                        "trainer.device=cpu", "seed=5"};
  overrides.insert(overrides.end(), c.overrides.begin(), c.overrides.end());
  return attnlab::testing::compose_shipped(overrides);
}

struct StepResult {
  std::map<std::string, torch::Tensor> terms;  // "total" and the logged terms, CPU float64
  std::map<std::string, torch::Tensor> grads;  // parameter name -> CPU float64 gradient
};

StepResult run_step(const YAML::Node& config, Gpt& model, const Batch& batch) {
  LossSet losses(config, model->options().n_layers);
  auto objective = make_objective(config);
  ObjectiveContext context;
  context.mask_token = kVocab - 1;
  context.bos_token = 0;
  context.generator = at::detail::createCPUGenerator(17);
  model->train();
  model->zero_grad();
  LossResult result = objective->compute(*model, batch, losses, context, /*training=*/true);
  result.total.backward();
  StepResult out;
  out.terms["total"] = result.total.detach().to(torch::kCPU, torch::kDouble);
  for (const auto& [name, value] : result.terms)
    out.terms[name] = value.detach().to(torch::kCPU, torch::kDouble);
  for (const auto& item : model->named_parameters(true))
    if (item.value().grad().defined())
      out.grads[item.key()] = item.value().grad().to(torch::kCPU, torch::kDouble);
  return out;
}

Batch make_batch(const torch::Device& device) {
  torch::manual_seed(23);
  Batch batch;
  auto tokens = torch::randint(1, kVocab - 1, {3, 17}, torch::kLong);
  tokens.select(1, 0).fill_(0);  // BOS first (decorrelation looks at it)
  batch.input = tokens.narrow(1, 0, 16).contiguous().to(device);
  batch.target = tokens.narrow(1, 1, 16).contiguous().to(device);
  return batch;
}

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  const double scale = std::max(want.abs().max().item<double>(), 1e-6);
  return (got - want).abs().max().item<double>() / scale;
}

}  // namespace

TEST(DeviceParity, EveryModuleAndLossMatchesCpuFloat64) {
  const torch::Device device = check_device();
  const std::string why = unavailable_reason(device);
  if (!why.empty()) GTEST_SKIP() << why;
  // On the CPU the device code path is forced; on a GPU `auto` picks it.
  const std::string backend = device.is_cpu() ? "sdpa" : "auto";
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const YAML::Node reference_config = case_config(c, "native");
    const YAML::Node device_config = case_config(c, backend);
    Gpt reference = build_model(reference_config, kVocab);
    Gpt on_device = build_model(device_config, kVocab);
    {
      torch::NoGradGuard no_grad;
      auto source = reference->named_parameters(true);
      for (auto& item : on_device->named_parameters(true)) item.value().copy_(source[item.key()]);
    }
    reference->to(torch::kDouble);
    on_device->to(device, torch::kFloat);
    const StepResult want = run_step(reference_config, reference, make_batch(torch::kCPU));
    const StepResult got = run_step(device_config, on_device, make_batch(device));
    ASSERT_EQ(got.terms.size(), want.terms.size());
    for (const auto& [name, value] : want.terms) {
      ASSERT_TRUE(got.terms.count(name)) << name;
      EXPECT_LT(relative_error(got.terms.at(name), value), 2e-4) << "term " << name;
    }
    ASSERT_EQ(got.grads.size(), want.grads.size());
    ASSERT_FALSE(want.grads.empty());
    double worst_grad = 0.0;
    for (const auto& [name, grad] : want.grads) {
      ASSERT_TRUE(got.grads.count(name)) << name;
      const double error = relative_error(got.grads.at(name), grad);
      worst_grad = std::max(worst_grad, error);
      EXPECT_LT(error, 2e-3) << "gradient of " << name;
    }
    std::cerr << "[parity] " << device.str() << " " << c.name << ": loss "
              << want.terms.at("total").item<double>() << ", loss error "
              << relative_error(got.terms.at("total"), want.terms.at("total"))
              << ", worst gradient error " << worst_grad << " over " << want.grads.size()
              << " gradients, " << want.terms.size() << " terms\n";
  }
}

TEST(DeviceParity, AttentionMakesNoHostRoundTrip) {
  const torch::Device device = check_device();
  if (!device.is_cuda() || cuda_device_count() == 0)
    GTEST_SKIP() << "needs a CUDA GPU (CUDA's sync-debug mode detects host round trips)";
#ifdef ATTNLAB_TEST_SYNC_DEBUG
  for (const Case& c : {cases()[0], cases()[2], cases()[4], cases()[13]}) {
    SCOPED_TRACE(c.name);
    const YAML::Node config = case_config(c, "auto");
    Gpt model = build_model(config, kVocab);
    model->to(device);
    model->train();
    Batch batch = make_batch(device);
    ForwardOptions forward;
    torch::cuda::synchronize();
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
    try {
      auto output = model->forward(batch.input, forward);
      auto loss = torch::nn::functional::cross_entropy(output.logits.reshape({-1, kVocab}),
                                                       batch.target.reshape({-1}));
      loss.backward();
    } catch (const std::exception& error) {
      c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
      FAIL() << "a host synchronisation inside the forward/backward: " << error.what();
    }
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
  }
#else
  GTEST_SKIP() << "this LibTorch has no c10/cuda headers";
#endif
}
