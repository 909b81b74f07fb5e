// `attnlab eval run_dir=... [eval.seq_lens=[128,256,...]] [eval.batches=N] [checkpoint=best]`:
// evaluates a trained run through its task (trainer/task.h), for every task: an LM run reports
// validation loss, perplexity and bits per byte at each requested sequence length (lengths
// beyond the training length test extrapolation; nothing caps them: RoPE and the masks are
// computed for the positions at hand), in the objective's own reading (masked diffusion: the
// NELBO bound per predicted token over eval.t_samples draws of t and masks, docs/methods.md §4);
// a classification run reports loss, accuracy and macro-F1 of its validation and test splits
// with a per-class table. Prints a table and writes <run_dir>/eval.json. A checkpoint with
// non-finite weights, or a non-finite loss, is an error (exit 2), never a table of -nan.
// An AR run's weights are evaluated as a dLM with
//   attnlab eval run_dir=<ar> objective.name=masked_diffusion model.mask=block_causal ...
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/command_options.h"
#include "common/config_access.h"
#include "common/progress_meter.h"
#include "config/options.h"
#include "io/atomic_file.h"
#include "trainer/nonfinite_guard.h"
#include "trainer/run_setup.h"
#include "trainer/trainer_options.h"

namespace attnlab {

namespace {

EvalOptions eval_options(const YAML::Node& config) {
  return config::bind<EvalOptions>(cfg::find(config, "eval"), "eval");
}

std::string cell(const nlohmann::json& value) {
  char text[64];
  if (value.is_number_integer())
    std::snprintf(text, sizeof(text), "%lld", static_cast<long long>(value.get<int64_t>()));
  else if (value.is_number())
    std::snprintf(text, sizeof(text), "%.4f", value.get<double>());
  else
    return value.is_string() ? value.get<std::string>() : value.dump();
  return text;
}

// `attnlab eval`'s own keys.
struct EvalCommandOptions {
  TORCH_ARG(std::optional<std::string>, run_dir) = std::nullopt;
  TORCH_ARG(std::string, checkpoint) = "best";

 public:
  template <class V>
  void visit(V& v) {
    v("run_dir", run_dir(), "the run to evaluate (required)");
    v("checkpoint", checkpoint(), "best | latest | a checkpoint file");
  }
};

}  // namespace

int run_eval_command(const CommandArgs& args) {
  // The command's own keys; every other argument is an override on the run's saved config.
  const std::vector<std::string> keys = command_option_keys<EvalCommandOptions>();
  std::vector<std::string> own, overrides;
  for (const auto& arg : args.overrides) {
    const std::string key = arg.substr(0, arg.find('='));
    (std::find(keys.begin(), keys.end(), key) != keys.end() ? own : overrides).push_back(arg);
  }
  const auto options = bind_command_options<EvalCommandOptions>("eval", own);
  const std::string& run_dir = required_option("eval", "run_dir", options.run_dir());
  std::unique_ptr<LoadedTask> run = load_task(run_dir, overrides, options.checkpoint());
  check_finite_weights(run->task->model(), run->checkpoint_path);
  const EvalPlan plan = run->task->eval_plan(eval_options(*run->config));

  std::printf("checkpoint: %s\n", run->checkpoint_path.c_str());
  if (!plan.title.empty()) std::printf("%s\n", plan.title.c_str());
  nlohmann::json results = nlohmann::json::array();
  for (EvalSpec spec : plan.specs) {
    ProgressMeter meter("eval " + spec.split + " seq_len " + std::to_string(spec.seq_len), 0.0,
                        "batches", 1.0, TrainerOptions::from_config(*run->config).loop().progress(),
                        nullptr, "trainer.progress");
    spec.progress = &meter;
    const TaskEvaluation result = run->task->evaluate(spec);
    meter.finish();
    check_user(std::isfinite(result.loss),
               "eval: checkpoint '" + run->checkpoint_path + "' gives a non-finite loss (" +
                   std::to_string(result.loss) + ") on " + spec.split + " at seq_len " +
                   std::to_string(spec.seq_len) +
                   ": its weights are finite, but the model overflows on this data");
    if (results.empty()) {
      for (const auto& [name, value] : result.row) std::printf(" %12s", name.c_str());
      std::printf("\n");
    }
    nlohmann::json row = nlohmann::json::object();
    for (const auto& [name, value] : result.row) {
      std::printf(" %12s", cell(value).c_str());
      row[name] = value;
    }
    std::printf("\n");
    if (!result.details.empty()) std::printf("\n%s\n", result.details.c_str());
    results.push_back(row);
  }
  nlohmann::json out = plan.header;
  out["checkpoint"] = run->checkpoint_path;
  out["task"] = task_name(*run->config);
  out["results"] = results;
  write_file_atomic((std::filesystem::path(run_dir) / "eval.json").string(), out.dump(2) + "\n");
  return 0;
}

}  // namespace attnlab
