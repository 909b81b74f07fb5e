// The training loop; see train_loop.h. The mainline (train_body) reads top to bottom: set up the
// run, resume, then per step StepRunner::run -> the divergence guard's policy for a bad step ->
// metrics -> eval every trainer.eval_every -> checkpoint every trainer.checkpoint_every -> stop
// on a signal. Its policies live in their own rooms: one step in step_runner.h, non-finite
// steps and spikes in divergence_guard.h, signals in stop_signals.h, result.json in
// result_file.h, the rank check in distributed/config_agreement.h.
#include "trainer/train_loop.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <optional>

#include "common/config_access.h"
#include "common/error.h"
#include "config/run_directory.h"
#include "config/yaml_io.h"
#include "distributed/config_agreement.h"
#include "distributed/distributed.h"
#include "distributed/gradient_reducer.h"
#include "distributed/preemption.h"
#include "trainer/checkpoint.h"
#include "trainer/divergence_guard.h"
#include "trainer/grad_early_stop.h"
#include "trainer/loop_options.h"
#include "trainer/lr_schedule.h"
#include "trainer/metrics_logger.h"
#include "trainer/mfu.h"
#include "trainer/nonfinite_guard.h"
#include "trainer/optimizer.h"
#include "trainer/progress.h"
#include "trainer/result_file.h"
#include "trainer/run_setup.h"
#include "trainer/step_runner.h"
#include "trainer/stop_signals.h"
#include "trainer/trainer_options.h"

namespace attnlab {

int exit_code_for(const TrainSummary& summary) {
  if (!summary.interrupted || summary.stop_signal == 0) return 0;
  return summary.stop_signal == SIGINT ? 130 : 143;
}

namespace {

// Lines that must be seen (guard and spike warnings, GradES freezes): rank 0, on stderr even with
// trainer.progress=none, above the progress bar otherwise.
struct Announcer {
  bool is_main = true;
  std::optional<Progress> progress;  // from the step training starts at, after resuming

  void say(const std::string& line) {
    if (!is_main) return;
    if (!progress || progress->mode() == Progress::Mode::kNone)
      std::cerr << line << std::endl;
    else
      progress->message(line);
  }
};

// The parts of one training run that the mainline's helpers share.
struct Run {
  const YAML::Node& config;
  DistributedContext& dist;
  const LoopOptions& loop;
  std::string dir;
  Task& task;
  torch::nn::Module& model;
  OptimizerSetup& optim;
  LrSchedule& schedule;
  GradEarlyStop& grades;
  DivergenceGuard& guard;
  TrainState state;
  Announcer& out;
  std::optional<MetricsLogger> metrics;  // rank 0 only
  bool evaluated = false;

  bool is_main() const { return dist.is_main(); }
};

void log_metrics(Run& run, int64_t step, const std::map<std::string, double>& values) {
  if (!run.metrics) return;
  nlohmann::json record = {{"step", step}};
  for (const auto& [key, value] : values) record[key] = value;
  run.metrics->log(record);
}

// Rank 0 locks the run directory (held until training returns) and tells the others its name
// (it may hold a timestamp). Nothing in it is written before everything was validated.
std::string lock_run_directory(const YAML::Node& config, DistributedContext& dist,
                               std::optional<config::RunDirectoryLock>& lock) {
  std::string run_dir;
  if (dist.is_main()) {
    run_dir = config::run_directory_path(config);
    lock.emplace(run_dir);
    for (const auto& file : lock->remove_stale_temporaries())
      std::cerr << "removed " << file << ", left by a process that died while writing it\n";
  }
  return dist.broadcast_string(run_dir);
}

// Model, optimizer, step, RNG states, the task's position and the guard's and GradES's state
// from the latest checkpoint (every rank loads the same file). False when starting afresh.
bool resume(Run& run) {
  auto latest =
      resume_per_config(run.config, run.dir, run.model, run.optim.optimizer.get(), &run.state);
  if (!latest) return false;
  // Checkpoints of older versions may hold a diverged model; never train on from one.
  const std::string bad =
      first_nonfinite(named_parameters_and_moments(run.model, *run.optim.optimizer));
  check_user(bad.empty(), "checkpoint '" + latest->path + "' holds a non-finite tensor ('" + bad +
                              "'), written by a diverged run: delete it and " +
                              checkpoint_dir(run.dir) +
                              "/latest to resume from an earlier checkpoint, or start over "
                              "with run.resume=never");
  run.task.load_state(run.state);
  run.guard.restore(run.state);
  run.grades.load(run.state.extra);
  if (run.is_main())
    std::cerr << "resumed from " << latest->path << " at step " << run.state.step << "\n";
  return true;
}

// Collective: every rank waits until rank 0's checkpoint is durable.
void save(Run& run, bool is_best) {
  run.task.save_state(run.state);
  run.guard.store(run.state);
  run.grades.save(run.state.extra);
  run.state.scheduler = run.schedule.describe();
  SaveOptions options;
  options.keep_last = run.loop.keep_last();
  options.is_best = is_best;
  if (run.is_main())
    save_checkpoint(run.dir, run.model, run.optim.optimizer.get(), run.state,
                    config::to_yaml(run.config), options);
  run.dist.barrier();
}

// A validation pass: logged, shown, kept in the summary; returns whether it is the best so far.
bool evaluate(Run& run, TrainSummary& summary) {
  const TaskEvaluation result = run.task.evaluate(EvalSpec{});
  const bool best = result.loss < run.state.best_val_loss;
  if (best) run.state.best_val_loss = result.loss;
  log_metrics(run, run.state.step, result.metrics);
  run.out.progress->message("step " + std::to_string(run.state.step) + " " + result.line);
  summary.val_loss = result.loss;
  summary.val_metrics = result.metrics;
  run.evaluated = true;
  return best;
}

// trainer.on_nonfinite=rollback: reloads the newest checkpoint (all of them are finite) on every
// rank and keeps the sampler where it is, so the data since that checkpoint, the offending batch
// included, is skipped; the guard lowers the LR.
void roll_back(Run& run, int64_t step, const std::string& fault) {
  TrainState restored;
  auto loaded = resume_latest(run.dir, run.model, run.optim.optimizer.get(), &restored);
  if (!loaded) run.guard.halt(step, fault, "no checkpoint to roll back to");
  run.grades.load(restored.extra);
  run.guard.rolled_back(step, fault, loaded->path, restored);
  run.state = restored;
  if (run.metrics) {
    run.metrics.reset();  // drops the records logged after the checkpoint, as on resume
    run.metrics.emplace(run.dir, run.state.step, run.loop.tensorboard());
  }
}

// Tokens, rows and seconds of the steps this process ran, for the summary's speeds.
struct Throughput {
  double tokens = 0, examples = 0, seconds = 0;
};

// An applied step's metrics: logged every trainer.log_every steps and shown on the progress bar.
void record_step(Run& run, const StepOutcome& outcome, double lr, double seconds,
                 double flops_per_token, MfuMeter& mfu, const GradientReducer& reducer,
                 Throughput& throughput) {
  throughput.tokens += static_cast<double>(outcome.tokens);
  throughput.examples += static_cast<double>(outcome.examples);
  throughput.seconds += seconds;
  run.state.tokens_seen += outcome.tokens;
  std::map<std::string, double> logged = outcome.logged;
  logged["lr"] = lr;
  logged["grad_norm"] = outcome.grad_norm;
  logged["tokens_per_s"] = static_cast<double>(outcome.tokens) / seconds;
  logged["examples_per_s"] = static_cast<double>(outcome.examples) / seconds;
  std::string mfu_note;
  logged["mfu"] = mfu.share(flops_per_token, logged["tokens_per_s"], &mfu_note);
  if (!mfu_note.empty()) run.out.say(mfu_note);
  logged["step_ms"] = seconds * 1000.0;
  run.guard.add_metrics(logged);
  if (run.grades.enabled())
    logged["grades/frozen"] = static_cast<double>(run.grades.frozen_count());
  const int64_t step = run.state.step;
  if (step % run.loop.log_cadence() == 0 || step == run.loop.max_steps()) {
    logged["peak_rss_mib"] = peak_rss_mib();
    if (run.dist.is_distributed())
      logged["exposed_comm_ms"] = reducer.stats().last_exposed_comm_s * 1000;
    log_metrics(run, step, logged);
  }
  run.out.progress->update({step, outcome.loss, lr, logged["tokens_per_s"], logged["mfu"]});
}

bool due(int64_t every, int64_t step) { return every > 0 && step % every == 0; }

// Said before requeueing: `scontrol requeue` makes Slurm kill this job right away.
void requeue_if_preempted(const Run& run) {
  if (!preemption_requested() || !run.is_main()) return;
  std::cerr << "pre-empted at step " << run.state.step << ": checkpoint saved, requeueing"
            << std::endl;
  std::string message;
  if (!requeue_slurm_job(&message)) std::cerr << "not requeued: " << message << std::endl;
}

// A finished run (its last checkpoint at max_steps, its result.json written) run again with the
// same command reports its result; nothing is trained, evaluated, logged or rewritten. An
// unreadable result.json, or one of another step, is rewritten by finishing the run again.
std::optional<TrainSummary> finished_result(Run& run, bool resumed, const std::string& task_label) {
  if (!resumed || run.state.step < run.loop.max_steps()) return std::nullopt;
  std::optional<TrainSummary> done = read_result_file(run.dir, task_label);
  if (!done || done->step != run.state.step) return std::nullopt;
  done->run_dir = run.dir;
  done->report = run.task.report(*done);
  return done;
}

// A finished run resumed with a larger trainer.max_steps: scheduler.extend decides the rate of
// the new steps (lr_schedule.h), said before the first of them.
std::optional<ScheduleExtension> extended_schedule(Run& run, bool resumed) {
  if (!resumed) return std::nullopt;
  std::optional<ScheduleExtension> extension = resume_schedule_extension(
      schedule_choice(run.config), run.state.step, run.state.scheduler, run.state.extra);
  if (extension) run.out.say(extension->describe());
  return extension;
}

// Rank 0, once the run is validated: config.yaml and the other records, the metrics files and
// TensorBoard's config text and HParams.
void start_writing(Run& run, config::RunDirectoryLock& lock,
                   const std::vector<std::string>& overrides, const std::vector<std::string>& argv,
                   bool resumed, const TrainSummary& summary, const MfuMeter& mfu) {
  config::prepare_run_directory(run.config, overrides, argv);
  lock.keep();
  std::cerr << "run dir: " << run.dir
            << (resumed ? " (resuming at step " + std::to_string(run.state.step) + ")"
                        : std::string(" (a new run)"))
            << "\n";
  std::cerr << "model: " << summary.parameters << " parameters ("
            << summary.non_embedding_parameters << " without embeddings)\n";
  std::cerr << "MFU against the " << mfu.describe() << "\n";
  // optim=muon: which parameters Muon and AdamW update (the rule is docs/training.md's).
  const bool split_by_rule = std::holds_alternative<MuonOptions>(run.optim.options);
  const std::string group_table = describe_param_groups(run.optim);
  if (split_by_rule) std::cerr << "optimizer param groups:\n" << group_table;
  run.metrics.emplace(run.dir, resumed ? std::optional<int64_t>(run.state.step) : std::nullopt,
                      run.loop.tensorboard());
  run.metrics->log_text("config", "```\n" + config::to_yaml(run.config) + "\n```", run.state.step);
  if (split_by_rule)
    run.metrics->log_text("optimizer_groups", "```\n" + group_table + "```", run.state.step);
  run.metrics->log_hparams(hparams_from_overrides(overrides),
                           {"val/loss", "val/perplexity", "train/loss"});
}

// After the loop: a run that was not interrupted is evaluated once more if it trained nothing
// (resumed at its last step), then the task's final numbers and result.json; the report always.
void finish_run(Run& run, const Throughput& throughput, TrainSummary& summary) {
  if (!summary.interrupted && !run.evaluated) evaluate(run, summary);
  summary.step = run.state.step;
  summary.tokens_per_second = throughput.seconds > 0 ? throughput.tokens / throughput.seconds : 0;
  summary.examples_per_second =
      throughput.seconds > 0 ? throughput.examples / throughput.seconds : 0;
  if (!summary.interrupted) run.task.finish(summary, run.metrics ? &*run.metrics : nullptr);
  // TensorBoard's HParams status: success when the run is done; an interrupted run, which a
  // resume continues, ends no session (a resumed run ends it), so it never shows as failed.
  if (run.metrics && !summary.interrupted) run.metrics->finish(true);
  if (run.is_main() && !summary.interrupted) write_result_file(run.dir, summary);
  summary.report = run.task.report(summary);
}

// The summary's parameter counts: all, and without the embeddings.
TrainSummary new_summary(const std::string& task_label, const std::string& run_dir, Task& task) {
  TrainSummary summary;
  summary.task = task_label;
  summary.run_dir = run_dir;
  for (const auto& p : task.model().parameters()) summary.parameters += p.numel();
  summary.non_embedding_parameters = summary.parameters - task.embedding_parameters();
  return summary;
}

TrainSummary train_body(const YAML::Node& config, const std::vector<std::string>& overrides,
                        const std::vector<std::string>& argv, DistributedContext& dist) {
  const TrainerOptions options = TrainerOptions::from_config(config);
  const LoopOptions& loop = options.loop();
  configure_threads(options.runtime());
  const torch::Device device = device_from_config(options);
  const std::string task_label = task_name(config);
  check_ranks_agree_on_config(dist, config);
  std::optional<config::RunDirectoryLock> lock;
  const std::string run_dir = lock_run_directory(config, dist, lock);

  // The task builds data, tokenizer, model (init_from applied), losses and validation batches.
  std::unique_ptr<Task> task = task_registry().get(task_label)(
      TaskContext{config, dist, device, cfg::get<int64_t>(config, "seed")});
  torch::nn::Module& model = task->model();
  TrainSummary summary = new_summary(task_label, run_dir, *task);
  model.to(device);
  dist.broadcast_module(model);
  OptimizerSetup optim = make_optimizer(model, config);
  GradEarlyStop grades(options.grades(), model.named_parameters(true).pairs(), loop.max_steps(),
                       /*skip_backward=*/!dist.is_distributed());
  std::unique_ptr<LrSchedule> schedule = make_schedule(config);
  // Measured before resuming: its matmuls draw from the global RNG, which a checkpoint restores.
  MfuMeter mfu(measure_matmul_peak(device), dist.world_size());
  Announcer out{dist.is_main(), std::nullopt};
  DivergenceGuard guard(options.nonfinite(), run_dir,
                        [&out](const std::string& text) { out.say("warning: " + text); });
  Run run{config, dist, loop, run_dir, *task, model, optim, *schedule, grades, guard, {}, out};
  run.state.tokenizer = task->tokenizer_fingerprint();  // another tokenizer's checkpoint: error
  const bool resumed = resume(run);

  if (std::optional<TrainSummary> done = finished_result(run, resumed, task_label)) return *done;
  // Validated: from here on the run directory is written.
  if (run.is_main()) start_writing(run, *lock, overrides, argv, resumed, summary, mfu);
  const std::optional<ScheduleExtension> extension = extended_schedule(run, resumed);
  out.progress = Progress(run.is_main() ? loop.progress() : "none", loop.max_steps(),
                          loop.log_cadence(), nullptr, run.state.step);
  const double flops_per_token = task->flops_per_token();
  GradientReducer reducer(dist, model, static_cast<size_t>(dist.options().bucket_mb * 1024 * 1024));
  StepRunner steps(*task, model, optim, reducer, dist, device, loop, guard, grades,
                   [&out](const std::string& line) { out.say(line); });
  StopSignalHandlers stop_handlers;
  install_preemption_handler();
  // Rollback needs a checkpoint to go back to from the start (rank 0 decides; save is collective).
  if (guard.needs_checkpoint_before_training() && !resumed &&
      dist.broadcast_string(run.is_main() && list_checkpoints(run_dir).empty() ? "1" : "0") == "1")
    save(run, false);

  Throughput throughput;
  model.train();
  while (run.state.step < loop.max_steps()) {
    const auto start = std::chrono::steady_clock::now();
    const int64_t step = run.state.step + 1;
    // Logged as `lr`: optim.lr (optim=muon: optim.muon.lr) on the schedule; each param group's
    // lr is its own base on the same schedule (set_learning_rate).
    const double lr_factor =
        extension ? extension->lr_factor(run.state.step) : schedule->lr_factor(run.state.step);
    const double lr = base_lr(optim.options) * lr_factor * guard.lr_scale();
    const StepOutcome outcome = steps.run(step, lr_factor, guard.lr_scale());
    if (outcome.kind == StepOutcome::Kind::kNonFinite) {
      if (guard.handle(step, outcome.fault, outcome.update_applied) ==
          DivergenceGuard::Action::kRollback)
        roll_back(run, step, outcome.fault);
      continue;
    }
    if (outcome.kind == StepOutcome::Kind::kDropped) continue;
    run.state.step = step;
    summary.train_loss = outcome.loss;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    record_step(run, outcome, lr, seconds, flops_per_token, mfu, reducer, throughput);

    const bool best =
        (due(loop.eval_every(), step) || step == loop.max_steps()) && evaluate(run, summary);
    const int stop_signal = received_stop_signal();
    const bool stop = dist.allreduce_any(stop_signal != 0 || preemption_requested()) ||
                      step == loop.halt_at_step();
    if (due(loop.checkpoint_every(), step) || step == loop.max_steps() || stop || best)
      save(run, best);
    if (stop) {
      summary.interrupted = step < loop.max_steps();
      summary.stop_signal = stop_signal;
      requeue_if_preempted(run);
      break;
    }
  }
  out.progress->finish();
  finish_run(run, throughput, summary);
  return summary;
}

}  // namespace

TrainSummary train(const YAML::Node& config, const std::vector<std::string>& overrides,
                   const std::vector<std::string>& argv) {
  std::shared_ptr<DistributedContext> dist = init_distributed(config);
  // An exception on one rank must not leave the others waiting in a collective: run_guarded
  // aborts the whole job with the message (single-process runs rethrow as usual).
  TrainSummary summary;
  run_guarded(*dist, [&] {
    summary = train_body(config, overrides, argv, *dist);
    return 0;
  });
  return summary;
}

}  // namespace attnlab
