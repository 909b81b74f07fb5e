// `attnlab train [overrides]`: composes the config, trains (resuming from the run dir when it
// has a checkpoint), then prints the final validation metrics and, when
// trainer.sample.max_new_tokens > 0, a sample from the trained model (also written to the run's
// TensorBoard log). `-m` runs a sweep through the configured launcher. Every task (task.name: lm,
// classification; see trainer/task.h) trains in the same loop and prints its own report.
// --dry-run prints the composed config and the run directory and does nothing else (after binding
// the groups with typed options, so a bad option value fails the dry run as it would the run).
// Stopped by SIGINT it exits with 130, by SIGTERM or SIGHUP with 143, after the checkpoint.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/option_groups.h"
#include "common/config_access.h"
#include "config/config.h"
#include "config/yaml_io.h"
#include "inference/sampling.h"
#include "interop/hf/pretrained_config.h"
#include "launch/local_sweep.h"
#include "trainer/checkpoint.h"
#include "trainer/lr_schedule.h"
#include "trainer/metrics_logger.h"
#include "trainer/result_file.h"
#include "trainer/run_setup.h"
#include "trainer/task.h"
#include "trainer/train_loop.h"
#include "trainer/trainer_options.h"

namespace attnlab {

namespace {

void print_final_sample(const YAML::Node& config, const TrainSummary& summary) {
  const TrainerOptions trainer = TrainerOptions::from_config(config);
  const FinalSampleOptions& wanted = trainer.final_sample();
  if (wanted.max_new_tokens() <= 0) return;
  LoadedRun run = load_run(summary.run_dir, {}, "latest");
  const std::vector<int64_t> ids = encode_prompt(*run.tokenizer, wanted.prompt());
  SampleOptions options;
  options.max_new_tokens = wanted.max_new_tokens();
  options.temperature = wanted.temperature();
  options.top_k = wanted.top_k();
  options.seed = cfg::get<int64_t>(config, "seed");
  SampleResult sample = generate(*run.model, ids, options);
  std::vector<int32_t> out(sample.tokens.begin(), sample.tokens.end());
  const std::string text = wanted.prompt() + run.tokenizer->decode(out);
  std::cout << "--- sample (" << wanted.max_new_tokens() << " tokens, temperature "
            << options.temperature << ") ---\n"
            << text << "\n---\n";
  // The sample also goes to TensorBoard's Text tab (its own small event file in the run).
  if (trainer.loop().tensorboard()) {
    TensorBoardWriter writer(tensorboard_dir(summary.run_dir));
    writer.add_text("sample", "```\n" + text + "\n```", summary.step);
  }
}

// `attnlab train --dry-run`: the composed config and the run directory, and what the real
// command would do there, decided by the same rules (plan_resume is resume_per_config without
// loading weights; a finished run is one whose newest checkpoint is at trainer.max_steps with its
// result.json): start a new run, resume and train on, print a finished run's result, or fail with
// the same error and exit code. No run directory is created, no data fetched, nothing trained.
int print_dry_run(const YAML::Node& config) {
  const std::string run_dir = cfg::get<std::string>(config, "run.dir");
  const int64_t max_steps = TrainerOptions::from_config(config).loop().max_steps();
  std::cout << config::to_yaml(config) << "\n";
  const std::optional<ResumePlan> plan = plan_resume(config, run_dir);  // may refuse, as train does
  std::cout << "dry run: would train in " << run_dir;
  std::error_code error;
  if (plan) {
    const int64_t step = plan->state.step;
    const std::optional<TrainSummary> finished = read_result_file(run_dir, task_name(config));
    if (step >= max_steps && finished && finished->step == step)
      std::cout << " (a finished run at step " << step << ": it would print its result)";
    else if (step >= max_steps)
      std::cout << " (it would resume from " << plan->checkpoint << " at step " << step
                << ", evaluate and write result.json)";
    else
      std::cout << " (it would resume from " << plan->checkpoint << " at step " << step
                << " and train to step " << max_steps << ")";
  } else if (std::filesystem::exists(run_dir, error)) {
    std::cout << " (the directory exists; it would start a new run there)";
  } else {
    std::cout << " (a new run)";
  }
  std::cout << "; nothing was written\n";
  return 0;
}

}  // namespace

int run_train_command(const CommandArgs& args) {
  if (args.multirun) return run_multirun(args, "train");  // local jobs or a Slurm array
  config::ComposeRequest request;
  request.overrides = args.overrides;
  request.config_dir = args.config_dir;
  YAML::Node config = compose_with_pretrained(request);
  // Every typed group binds (a bad key or value is one line before anything is written), and a
  // top-level key nothing reads is refused.
  check_option_groups(config);
  schedule_choice(config);  // the run length too (trainer.max_steps=0 is refused by both)
  if (args.dry_run) return print_dry_run(config);
  TrainSummary summary = train(config, args.overrides, args.argv);
  if (summary.interrupted) {
    std::cout << "stopped at step " << summary.step
              << "; resume with the same command (run.dir=" << summary.run_dir << ")\n";
    std::cout.flush();
    return exit_code_for(summary);
  }
  std::cout << summary.report << "run dir: " << summary.run_dir << "\n";
  if (summary.already_finished) {
    std::printf(
        "(this run had finished: its result.json; nothing was trained or written. Raise "
        "trainer.max_steps to train on, or set run.dir for a new run)\n");
    return 0;
  }
  std::cout.flush();
  if (summary.task == "lm") print_final_sample(config, summary);
  return 0;
}

}  // namespace attnlab
