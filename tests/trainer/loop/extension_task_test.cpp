// Adding a task or a command touches nothing else: this file defines a task (least-squares
// regression of y = Σx with one linear layer, a toy that needs no data files) and a command,
// registers both with one line each (task_registry / command_registry, as the shipped tables
// do), and then the one training loop trains the task by name — checkpoints, resume, result.json
// — `load_task` reloads the run for evaluation through the same seam `attnlab eval` uses, and the
// command runs through the same dispatch as `attnlab <command>`.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "tests/support/train_runs.h"
#include "trainer/checkpoint.h"
#include "trainer/run_setup.h"
#include "trainer/task.h"
#include "trainer/train_loop.h"

using namespace attnlab;

namespace {

class SumRegressionTask : public Task {
 public:
  explicit SumRegressionTask(const TaskContext& context)
      : generator_(at::detail::createCPUGenerator(context.seed)) {
    torch::manual_seed(context.seed);
    model_ = torch::nn::Linear(4, 1);
    val_x_ = torch::randn({64, 4}, torch::TensorOptions().dtype(torch::kFloat32));
  }
  torch::nn::Module& model() override { return *model_; }
  int64_t embedding_parameters() const override { return 0; }
  double flops_per_token() const override { return 0; }
  std::string tokenizer_fingerprint() const override { return ""; }
  Batch next_batch() override {
    Batch batch;
    batch.input = torch::randn({8, 4}, generator_);
    batch.target = batch.input.sum(1, /*keepdim=*/true);
    return batch;
  }
  int64_t tokens_in(const Batch& batch) const override { return batch.input.size(0); }
  LossResult training_loss(const Batch& batch) override {
    LossResult result;
    result.total = torch::mse_loss(model_(batch.input), batch.target);
    result.terms["loss/mse"] = result.total;
    return result;
  }
  TaskEvaluation evaluate(const EvalSpec& spec) override {
    torch::NoGradGuard no_grad;
    TaskEvaluation out;
    out.loss = torch::mse_loss(model_(val_x_), val_x_.sum(1, true)).item<double>();
    out.metrics = {{spec.split + "/loss", out.loss}};
    out.line = "val mse " + std::to_string(out.loss);
    out.row = {{"split", spec.split}, {"mse", out.loss}};
    return out;
  }
  EvalPlan eval_plan(const EvalOptions&) const override { return {{EvalSpec{}}, "mse", {}}; }
  void save_state(TrainState& state) override {
    state.extra["sum_regression.rng"] = std::to_string(generator_.current_seed());
  }
  void load_state(const TrainState&) override {}
  std::string report(const TrainSummary& s) const override {
    return "final: step " + std::to_string(s.step) + " | val mse " + std::to_string(s.val_loss);
  }

 private:
  torch::Generator generator_;
  torch::nn::Linear model_{nullptr};
  torch::Tensor val_x_;
};

int greet_command(const CommandArgs& args) { return static_cast<int>(args.overrides.size()); }

bool registered = [] {
  task_registry().add("test_sum_regression", [](const TaskContext& context) {
    return std::make_unique<SumRegressionTask>(context);
  });
  command_registry().add("test_greet", {greet_command});
  return true;
}();

}  // namespace

TEST(Extension, TaskRegisteredFromATestFileTrainsResumesAndEvaluates) {
  ASSERT_TRUE(registered);
  const std::string run_dir = attnlab::testing::scratch_run_dir("extension_task");
  std::vector<std::string> overrides = {"run.dir=" + run_dir,      "task.name=test_sum_regression",
                                        "trainer.max_steps=40",    "trainer.eval_every=0",
                                        "trainer.threads=1",       "trainer.progress=none",
                                        "optim.lr=0.05",           "optim.weight_decay=0",
                                        "scheduler.warmup_steps=0"};
  auto halted = overrides;
  halted.push_back("trainer.halt_at_step=20");
  const TrainSummary first = train(attnlab::testing::compose_shipped(halted), {}, {"test"});
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.step, 20);
  const TrainSummary done = train(attnlab::testing::compose_shipped(overrides), {}, {"test"});
  EXPECT_EQ(done.step, 40);
  EXPECT_LT(done.val_loss, 0.5) << "the loop trained the task: val mse starts near 4";
  EXPECT_TRUE(std::filesystem::exists(run_dir + "/result.json"));

  // `attnlab eval`'s way in: the task rebuilt from the run's config.yaml with its weights.
  std::unique_ptr<LoadedTask> loaded = load_task(run_dir, {}, "latest");
  const EvalPlan plan = loaded->task->eval_plan(EvalOptions{});
  ASSERT_EQ(plan.specs.size(), 1u);
  EXPECT_EQ(loaded->task->evaluate(plan.specs[0]).loss, done.val_loss);
}

TEST(Extension, CommandRegisteredFromATestFileRunsThroughTheDispatch) {
  ASSERT_TRUE(registered);
  CommandArgs args;
  args.overrides = {"a=1", "b=2"};
  EXPECT_EQ(command_registry().get("test_greet").run(args), 2);
}
