// Adding a part touches nothing else: this file defines an attention module and a loss term,
// registers both from here (attention_registry / loss_registry, the same one-line calls the
// shipped tables make), and a whole training run picks them by name from the config and trains
// them, with no other file of attnlab changed. The module's own reset_parameters is what the
// model calls for its init (no name matching).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>

#include "losses/loss_term.h"
#include "losses/loss_term_entry.h"
#include "modules/attention.h"
#include "modules/attention_entry.h"
#include "modules/attention_math.h"
#include "modules/gpt.h"
#include "tests/support/tiny_gpt.h"
#include "tests/support/train_runs.h"
#include "trainer/checkpoint.h"
#include "trainer/train_loop.h"

using namespace attnlab;

namespace {

// Causal running mean of projected values: y_t = W_o · mean_{s<=t} W_v x_s (a toy, not a method).
class RunningMeanAttentionImpl : public AttentionImpl {
 public:
  explicit RunningMeanAttentionImpl(const AttentionOptions& options) {
    value = register_module("value", torch::nn::Linear(options.d_model, options.d_model));
    out = register_module("out", torch::nn::Linear(options.d_model, options.d_model));
  }
  AttentionOutput forward(const torch::Tensor& x, const AttentionContext&) override {
    auto v = value(x);
    auto counts = torch::arange(1, x.size(1) + 1, x.options()).view({1, -1, 1});
    AttentionOutput output;
    output.y = out(v.cumsum(1) / counts);
    return output;
  }
  // The model's scheme under this module's own names: value reads the residual stream, out
  // writes into it. Records each call for the test.
  void reset_parameters(const ParameterInit& init) override {
    init_projection(value, init.std);
    init_projection(out, init.residual_std);
    reset_calls().push_back(init);
  }
  static std::vector<ParameterInit>& reset_calls() {
    static std::vector<ParameterInit> calls;
    return calls;
  }
  torch::nn::Linear value{nullptr}, out{nullptr};
};

// Mean squared logit, a toy regulariser with one key of its own.
struct LogitSquareTermOptions {
  TORCH_ARG(double, scale) = 1.0;

 public:
  template <class V>
  void visit(V& v) {
    v("scale", scale(), "multiplies the mean squared logit", config::at_least(0.0));
  }
};

class LogitSquareTerm : public LossTerm {
 public:
  LogitSquareTerm(const LogitSquareTermOptions& options, const LossTermContext&)
      : scale_(options.scale()) {}
  TapRequest taps(int64_t) const override { return {}; }
  torch::Tensor compute(const ModelOutput& output, const Batch&,
                        std::map<std::string, torch::Tensor>&) const override {
    return scale_ * output.logits.pow(2).mean();
  }

 private:
  double scale_;
};

bool registered = [] {
  attention_registry().add("test_running_mean",
                           attention_entry<RunningMeanAttentionImpl, NoModuleOptions>());
  loss_registry().add("test_logit_square",
                      loss_term_entry<LogitSquareTerm, LogitSquareTermOptions>());
  return true;
}();

}  // namespace

TEST(Extension, AttentionAndLossRegisteredFromATestFileTrain) {
  ASSERT_TRUE(registered);
  const std::string run_dir = attnlab::testing::scratch_run_dir("extension");
  const YAML::Node config = attnlab::testing::compose_shipped(
      // The module has no options of its own: mha's keys go (a configs/attention/ file for it
      // would hold just its name).
      {"run.dir=" + run_dir, "attention.name=test_running_mean", "~attention.rope",
       "~attention.bias",
       "loss.terms=[{name: cross_entropy}, {name: test_logit_square, weight: 0.5, scale: 0.01}]",
       "model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.max_seq_len=32",
       "data.seq_len=32", "data.batch_size=4", "data.max_documents=20", "trainer.max_steps=3",
       "trainer.eval_every=0", "trainer.eval_batches=2", "trainer.threads=1",
       "trainer.progress=none", "trainer.log_every=1", "scheduler.warmup_steps=0"});
  const TrainSummary summary = train(config, {}, {"test"});
  EXPECT_EQ(summary.step, 3);
  const auto params = read_checkpoint_model_state(resolve_checkpoint(run_dir));
  EXPECT_TRUE(params.count("blocks.0.attn.value.weight"));
  EXPECT_TRUE(params.count("blocks.1.attn.out.bias"));
  EXPECT_FALSE(params.count("blocks.0.attn.q_proj.weight"));
  std::ifstream metrics(run_dir + "/metrics.jsonl");
  std::string first;
  std::getline(metrics, first);
  EXPECT_NE(first.find("test_logit_square"), std::string::npos) << first;
}

TEST(Extension, ModelInitialisesARegisteredModuleThroughItsResetParameters) {
  ASSERT_TRUE(registered);
  const GptOptions options = attnlab::testing::tiny_gpt_options(
      40, 128, 3, 2, 16, "test_running_mean", "{name: test_running_mean}");
  RunningMeanAttentionImpl::reset_calls().clear();
  torch::manual_seed(5);
  const Gpt model(options);
  // Once per layer, with the model's scheme.
  const auto& calls = RunningMeanAttentionImpl::reset_calls();
  ASSERT_EQ(calls.size(), 3u);
  const double residual = 0.02 / std::sqrt(6.0);
  for (const ParameterInit& init : calls) {
    EXPECT_DOUBLE_EQ(init.std, 0.02);
    EXPECT_DOUBLE_EQ(init.residual_std, residual);
  }
  // The tensors carry it: N(0, std) / N(0, residual_std) weights, zero biases (LibTorch's
  // default would be U(±1/sqrt(128)), std 0.051, and non-zero biases).
  auto params = model->named_parameters();
  for (int layer = 0; layer < 3; ++layer) {
    const std::string p = "blocks." + std::to_string(layer) + ".attn.";
    EXPECT_NEAR(params[p + "value.weight"].std().item<double>(), 0.02, 0.002);
    EXPECT_NEAR(params[p + "out.weight"].std().item<double>(), residual, residual * 0.1);
    EXPECT_EQ(params[p + "value.bias"].abs().max().item<double>(), 0.0);
    EXPECT_EQ(params[p + "out.bias"].abs().max().item<double>(), 0.0);
  }
}
