// `attnlab probe probe.target=loss`: the composed loss group on synthetic inputs, written as a
// torch.load-able dict. Checked in C++ (keys, shapes, which inputs get gradients) and, with
// the project Python + torch, by an independent focal-loss implementation that recomputes the loss
// and the logits gradient from the file's own logits and targets.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "config/config.h"
#include "probes/loss_probe.h"
#include "probes/probe.h"
#include "tests/losses/python_ref.h"

using namespace attnlab;

namespace {

YAML::Node compose(const std::vector<std::string>& overrides) {
  config::ComposeRequest request;
  request.overrides = overrides;
  return config::compose(request);
}

}  // namespace

TEST(LossProbeTarget, TokenLevelTermsDumpEveryInputAndGradient) {
  YAML::Node config = compose({"probe.target=loss", "loss=decorrelation", "model.n_layers=3",
                               "model.d_model=8", "model.n_heads=2", "probe.seq_len=6"});
  auto dump = probe_registry().get("loss")(config);
  ASSERT_TRUE(dump.count("logits"));
  EXPECT_EQ(dump.at("logits").sizes(), (std::vector<int64_t>{2, 6, 11}));
  EXPECT_EQ(dump.at("targets").sizes(), (std::vector<int64_t>{2, 6}));
  for (int l = 0; l < 3; ++l) {
    const std::string layer = std::to_string(l);
    EXPECT_EQ(dump.at("hidden." + layer).sizes(), (std::vector<int64_t>{2, 6, 8}));
    EXPECT_EQ(dump.at("attn." + layer).sizes(), (std::vector<int64_t>{2, 2, 6, 6}));
    EXPECT_TRUE(dump.count("grad.attn." + layer));
  }
  // Decorrelation reads blocks 0 and 1 (all but the last): those hidden states get gradients.
  EXPECT_GT(dump.at("grad.hidden.1").abs().sum().item<double>(), 0.0);
  EXPECT_EQ(dump.at("grad.hidden.2").abs().sum().item<double>(), 0.0);
  EXPECT_GT(dump.at("grad.logits").abs().sum().item<double>(), 0.0);  // cross-entropy term
  EXPECT_NEAR(
      dump.at("loss").item<double>(),
      dump.at("loss/cross_entropy").item<double>() + dump.at("loss/decorrelation").item<double>(),
      1e-6);
  EXPECT_THROW(probe_registry().get("loss")(compose({"probe.target=loss", "probe.loss_vocab=1"})),
               UserError);
}

TEST(LossProbeTarget, FocalAutoFileMatchesAPythonReimplementation) {
  const std::string dir =
      std::string(ATTNLAB_BINARY_DIR) + "/test_loss_probe_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string out = dir + "/focal.pt";
  YAML::Node config =
      compose({"probe.target=loss", "loss=focal_auto", "loss.gamma=2.0", "probe.loss_vocab=3",
               "probe.loss_classification=true", "probe.batch=24", "probe.dtype=float64", "seed=5",
               "probe.out=" + out});
  EXPECT_EQ(run_probe(config), out);
  ASSERT_TRUE(std::filesystem::exists(out));
  REQUIRE_PYTHON_WITH("torch");
  const std::string script = dir + "/check.py";
  std::ofstream(script) << R"PY(
import sys, torch
d = torch.load(sys.argv[1])
for key in ["logits", "targets", "loss", "grad.logits", "loss/focal", "hidden.0", "attn.0"]:
    assert key in d, (key, sorted(d))
x = d["logits"].clone().requires_grad_(True)
y = d["targets"]
assert x.dtype == torch.float64 and list(x.shape) == [24, 3], (x.dtype, x.shape)
counts = torch.bincount(y, minlength=3).double().clamp(min=1)
alpha = (1 / counts) * 3 / (1 / counts).sum()        # inverse frequency, mean 1
logp = torch.log_softmax(x, -1).gather(1, y[:, None])[:, 0]
loss = (alpha[y] * (1 - logp.exp()) ** 2 * -logp).mean()
loss.backward()
assert torch.allclose(loss, d["loss"], rtol=1e-12, atol=1e-14), (loss.item(), d["loss"].item())
assert torch.allclose(x.grad, d["grad.logits"], rtol=1e-10, atol=1e-14)
print("ok")
)PY";
  const std::string command =
      "'" + ::attnlab::testing::project_python() + "' " + script + " " + out;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::filesystem::remove_all(dir);
}
