// The training loop; see train_loop.h. Order of one optimizer step (fixed, so that a resumed run
// replays exactly): lr from the schedule (times the rollback LR scale) -> grad_accum_steps
// micro-batches (the task's next batch and loss, backward; gradients all-reduced on the last)
// -> guard (loss terms, gradients) -> clip -> guard (grad norm, spike detector) -> AdamW step ->
// guard (parameters and moments) -> metrics -> eval every trainer.eval_every -> checkpoint every
// trainer.checkpoint_every. Every guard decision depends only on values that are equal on all
// ranks (rank-averaged losses, all-reduced gradients, identical parameters), so ranks agree
// without an extra collective.
#include "trainer/train_loop.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <type_traits>

#include "common/config_access.h"
#include "common/error.h"
#include "config/run_directory.h"
#include "config/yaml_io.h"
#include "config/yaml_tree.h"
#include "distributed/distributed.h"
#include "distributed/gradient_reducer.h"
#include "distributed/preemption.h"
#include "losses/loss_set.h"
#include "trainer/atomic_file.h"
#include "trainer/autocast.h"
#include "trainer/checkpoint.h"
#include "trainer/grad_early_stop.h"
#include "trainer/loop_options.h"
#include "trainer/lr_schedule.h"
#include "trainer/metrics_logger.h"
#include "trainer/mfu.h"
#include "trainer/nonfinite_guard.h"
#include "trainer/optimizer.h"
#include "trainer/progress.h"
#include "trainer/run_setup.h"

namespace attnlab {

namespace {

std::atomic<int> received_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "signal flag must be lock-free");
// The first signal asks for a clean stop; a second one (Ctrl-C again) exits at once, with no
// checkpoint, as a user who presses it twice expects. Only async-signal-safe calls here.
extern "C" void on_stop_signal(int signal_number) {
  if (received_stop_signal.exchange(signal_number) != 0) {
    static const char message[] = "\nsecond stop signal: exiting now, without a checkpoint\n";
    (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
    _exit(signal_number == SIGINT ? 130 : 143);
  }
  static const char message[] =
      "\nstopping after this step with a checkpoint (send the signal again to exit at once)\n";
  (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
}

// While training runs, SIGINT, SIGTERM and SIGHUP only set a flag: the loop stops at the end of
// the step with a checkpoint. The previous handlers come back when training returns.
class StopSignalHandlers {
 public:
  StopSignalHandlers() {
    received_stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &action, &previous_[i]);
  }
  ~StopSignalHandlers() {
    for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &previous_[i], nullptr);
  }
  StopSignalHandlers(const StopSignalHandlers&) = delete;
  StopSignalHandlers& operator=(const StopSignalHandlers&) = delete;

 private:
  static constexpr std::array<int, 3> kSignals{SIGINT, SIGTERM, SIGHUP};
  std::array<struct sigaction, 3> previous_{};
};

// The guard's counters and LR scale; they travel in TrainState::extra so a resumed run keeps
// the lowered LR and the counts.
struct GuardState {
  double lr_scale = 1.0;
  int64_t rollbacks = 0;
  int64_t skipped_batches = 0;  // dropped for a non-finite loss or gradient
  int64_t spikes = 0;           // detected by the spike detector
  int64_t spike_skips = 0;      // of those, dropped (trainer.spike_skip)

  void store(TrainState& state) const {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.17g", lr_scale);
    state.extra["guard.lr_scale"] = buffer;
    state.extra["guard.rollbacks"] = std::to_string(rollbacks);
    state.extra["guard.skipped_batches"] = std::to_string(skipped_batches);
    state.extra["guard.spikes"] = std::to_string(spikes);
    state.extra["guard.spike_skips"] = std::to_string(spike_skips);
  }
  void load(const TrainState& state) {
    *this = GuardState();
    auto number = [&](const std::string& key, auto& out) {
      auto it = state.extra.find(key);
      if (it == state.extra.end()) return;
      try {
        if constexpr (std::is_same_v<std::decay_t<decltype(out)>, double>)
          out = std::stod(it->second);
        else
          out = std::stoll(it->second);
      } catch (const std::exception&) {
        throw UserError("checkpoint meta entry '" + key + "' is not a number: '" + it->second +
                        "'");
      }
    };
    number("guard.lr_scale", lr_scale);
    number("guard.rollbacks", rollbacks);
    number("guard.skipped_batches", skipped_batches);
    number("guard.spikes", spikes);
    number("guard.spike_skips", spike_skips);
  }
  // Metrics keys appear once something happened, so runs without trouble log what they did.
  void add_metrics(std::map<std::string, double>& logged) const {
    if (skipped_batches > 0)
      logged["nonfinite/skipped_batches"] = static_cast<double>(skipped_batches);
    if (rollbacks > 0) {
      logged["nonfinite/rollbacks"] = static_cast<double>(rollbacks);
      logged["nonfinite/lr_scale"] = lr_scale;
    }
    if (spikes > 0) logged["spikes/detected"] = static_cast<double>(spikes);
    if (spike_skips > 0) logged["spikes/skipped_batches"] = static_cast<double>(spike_skips);
  }
};

std::string format_value(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  return buffer;
}

// "" when every logged loss is finite, else which one is not: a term ("train/loss/<term>",
// "train/aux/<module loss>") before the total, which is their sum. Diagnostics
// ("train/stat/...") take no part in the gradient and are not checked.
std::string nonfinite_loss(const std::map<std::string, double>& logged) {
  for (const auto& [name, value] : logged)
    if ((name.rfind("train/loss/", 0) == 0 || name.rfind("train/aux/", 0) == 0) &&
        !std::isfinite(value))
      return "loss term '" + name.substr(6) + "' is " + format_value(value);
  auto total = logged.find("train/loss");
  if (total != logged.end() && !std::isfinite(total->second))
    return "the loss is " + format_value(total->second);
  return "";
}

NamedTensors parameters_and_moments(const torch::nn::Module& model,
                                    const torch::optim::Optimizer& optimizer) {
  NamedTensors tensors = named_parameters_and_buffers(model);
  NamedTensors moments = named_optimizer_state(model, optimizer);
  tensors.insert(tensors.end(), moments.begin(), moments.end());
  return tensors;
}

struct StepTiming {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

// result.json: what every task reports, then the task's own numbers (summary.results).
nlohmann::json summary_to_json(const TrainSummary& s) {
  nlohmann::json out = {{"task", s.task},
                        {"run_dir", s.run_dir},
                        {"step", s.step},
                        {"train_loss", s.train_loss},
                        {"val_loss", s.val_loss},
                        {"tokens_per_s", s.tokens_per_second},
                        {"examples_per_s", s.examples_per_second},
                        {"parameters", s.parameters},
                        {"non_embedding_parameters", s.non_embedding_parameters}};
  for (const auto& [key, value] : s.results) out[key] = value;
  return out;
}

// The summary of a run that finished before, from its result.json; nullopt when the file cannot
// be read as one (the run is then finished again, which rewrites it).
std::optional<TrainSummary> read_finished_summary(const std::string& path,
                                                  const std::string& task) {
  try {
    const nlohmann::json result = nlohmann::json::parse(read_file_bytes(path));
    TrainSummary done;
    done.task = task;
    done.step = result.at("step").get<int64_t>();
    done.train_loss = result.at("train_loss").get<double>();
    done.val_loss = result.at("val_loss").get<double>();
    done.tokens_per_second = result.at("tokens_per_s").get<double>();
    done.examples_per_second = result.value("examples_per_s", 0.0);
    done.parameters = result.value("parameters", int64_t{0});
    done.non_embedding_parameters = result.value("non_embedding_parameters", int64_t{0});
    static const std::set<std::string> kCommon = {"step",
                                                  "train_loss",
                                                  "val_loss",
                                                  "tokens_per_s",
                                                  "examples_per_s",
                                                  "parameters",
                                                  "non_embedding_parameters"};
    for (const auto& [key, value] : result.items())
      if (value.is_number() && !kCommon.count(key)) done.results[key] = value.get<double>();
    done.val_perplexity = done.results.count("val_perplexity") ? done.results["val_perplexity"] : 0;
    done.val_bits_per_byte =
        done.results.count("val_bits_per_byte") ? done.results["val_bits_per_byte"] : 0;
    done.already_finished = true;
    return done;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// 0-d tensors (any device) as doubles, read back with one device-to-host copy.
std::map<std::string, double> read_scalars(const std::map<std::string, torch::Tensor>& tensors) {
  std::map<std::string, double> values;
  if (tensors.empty()) return values;
  std::vector<torch::Tensor> parts;
  for (const auto& [name, tensor] : tensors) parts.push_back(tensor.reshape({}));
  const auto host = torch::stack(parts).to(torch::kCPU, torch::kFloat64).contiguous();
  const double* data = host.data_ptr<double>();
  int64_t i = 0;
  for (const auto& [name, tensor] : tensors) values[name] = data[i++];
  return values;
}

// Logged losses are each rank's mean over its own rows; the mean over ranks is the loss of the
// global batch (every rank holds the same number of rows), comparable to a 1-process run.
void average_over_ranks(DistributedContext& dist, std::map<std::string, double>& values) {
  auto packed = torch::empty({static_cast<int64_t>(values.size())}, torch::kFloat64);
  int64_t i = 0;
  for (const auto& [name, value] : values) packed[i++] = value;  // same keys on every rank
  dist.allreduce_sum_(packed);
  i = 0;
  for (auto& [name, value] : values) value = packed[i++].item<double>() / dist.world_size();
}

// Ranks must train one config: a per-rank trainer.max_steps, say, would otherwise end in a raw
// MPI_ERR_TRUNCATE when one rank stops early. Every rank compares its composed config with
// rank 0's; a rank whose config differs fails naming the keys (run_guarded then aborts the job
// with that message). run.dir and run.sweep_dir may hold per-rank timestamps: rank 0's are used.
void check_ranks_agree_on_config(DistributedContext& dist, const YAML::Node& config) {
  if (!dist.is_distributed()) return;
  YAML::Node mine = config::deep_copy(config);
  config::erase_node(mine, "run.dir");
  config::erase_node(mine, "run.sweep_dir");
  const std::string text = config::to_yaml(mine);
  const std::string reference_text = dist.broadcast_string(text);
  if (text == reference_text) {
    // Agreeing ranks wait here, writing nothing, until every rank has compared: a rank that
    // differs aborts the job before rank 0 touches the run directory.
    dist.barrier();
    return;
  }
  const YAML::Node reference = config::parse_yaml(reference_text, "rank 0's config");
  auto leaf = [](const YAML::Node& root, const std::string& key) -> std::string {
    YAML::Node node = config::find_node(root, key);
    if (!node.IsDefined()) return "(absent)";
    if (node.IsMap()) return "";
    YAML::Emitter out;
    out << YAML::Flow << node;
    return out.c_str();
  };
  std::vector<std::string> keys = config::all_keys(reference);
  for (const auto& key : config::all_keys(mine))
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  std::string differences;
  int shown = 0;
  for (const auto& key : keys) {
    const std::string theirs = leaf(reference, key), ours = leaf(mine, key);
    if (theirs == ours) continue;
    if (++shown <= 8)
      differences += (differences.empty() ? "" : ", ") + key + " (rank 0: " + theirs + ", rank " +
                     std::to_string(dist.rank()) + ": " + ours + ")";
  }
  if (shown > 8) differences += ", and " + std::to_string(shown - 8) + " more";
  throw UserError("rank " + std::to_string(dist.rank()) +
                  "'s config differs from rank 0's; every rank must get the same overrides: " +
                  (differences.empty() ? std::string("(formatting only)") : differences));
}

}  // namespace

namespace {
TrainSummary train_body(const YAML::Node& config, const std::vector<std::string>& overrides,
                        const std::vector<std::string>& argv,
                        const std::shared_ptr<DistributedContext>& dist);
}  // namespace

TrainSummary train(const YAML::Node& config, const std::vector<std::string>& overrides,
                   const std::vector<std::string>& argv) {
  std::shared_ptr<DistributedContext> dist = init_distributed(config);
  // An exception on one rank must not leave the others waiting in a collective: run_guarded
  // aborts the whole job with the message (single-process runs rethrow as usual).
  TrainSummary summary;
  run_guarded(*dist, [&] {
    summary = train_body(config, overrides, argv, dist);
    return 0;
  });
  return summary;
}

int exit_code_for(const TrainSummary& summary) {
  if (!summary.interrupted || summary.stop_signal == 0) return 0;
  return summary.stop_signal == SIGINT ? 130 : 143;
}

namespace {

// The run's hyperparameters for TensorBoard's HParams tab: its command-line overrides
// (`optim.lr=3e-4` -> "optim.lr": 0.0003), which in a sweep are exactly what varies.
std::map<std::string, HParamValue> hparams_from_overrides(
    const std::vector<std::string>& overrides) {
  std::map<std::string, HParamValue> hparams;
  for (const std::string& item : overrides) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) continue;
    std::string key = item.substr(0, eq);
    const std::string value = item.substr(eq + 1);
    while (!key.empty() && (key[0] == '+' || key[0] == '~')) key.erase(0, 1);
    if (key.empty()) continue;
    char* end = nullptr;
    const double number = std::strtod(value.c_str(), &end);
    if (!value.empty() && end == value.c_str() + value.size() && std::isfinite(number))
      hparams.emplace(key, number);
    else if (value == "true" || value == "false")
      hparams.emplace(key, value == "true");
    else
      hparams.emplace(key, value);
  }
  return hparams;
}

TrainSummary train_body(const YAML::Node& config, const std::vector<std::string>& overrides,
                        const std::vector<std::string>& argv,
                        const std::shared_ptr<DistributedContext>& dist) {
  const bool is_main = dist->is_main();
  configure_threads(config);
  const torch::Device device = device_from_config(config);
  const int64_t seed = cfg::get<int64_t>(config, "seed");
  const NonFiniteOptions safety = NonFiniteOptions::from_config(config);
  const LoopOptions loop = LoopOptions::from_config(config);
  const std::string task_label = task_name(config);
  check_ranks_agree_on_config(*dist, config);

  // Run directory: rank 0 locks it (held until this function returns) and tells the others its
  // name (it may hold a timestamp). Nothing in it is written before everything below, the
  // existing checkpoint included, was validated: a failed command leaves the run as it was.
  std::optional<config::RunDirectoryLock> lock;
  std::string run_dir;
  if (is_main) {
    run_dir = config::run_directory_path(config);
    lock.emplace(run_dir);
    for (const auto& file : lock->remove_stale_temporaries())
      std::cerr << "removed " << file << ", left by a process that died while writing it\n";
  }
  run_dir = dist->broadcast_string(run_dir);

  // The task: data, tokenizer, model (init_from applied), losses, sampler, validation batches.
  std::unique_ptr<Task> task =
      task_registry().get(task_label)(TaskContext{config, *dist, device, seed});
  torch::nn::Module& model = task->model();
  int64_t parameters = 0;
  for (const auto& p : model.parameters()) parameters += p.numel();
  const int64_t embedding_parameters = task->embedding_parameters();
  model.to(device);
  dist->broadcast_module(model);

  OptimizerSetup optim = make_optimizer(model, config);
  std::vector<std::pair<std::string, torch::Tensor>> named_params;
  for (const auto& item : model.named_parameters(true))
    named_params.emplace_back(item.key(), item.value());
  GradEarlyStop grades(GradEarlyStopOptions::from_config(config), named_params, loop.max_steps,
                       /*skip_backward=*/!dist->is_distributed());
  std::unique_ptr<LrSchedule> schedule = make_schedule(config);

  const int64_t max_steps = loop.max_steps, accum = loop.grad_accum_steps;

  // Measured before resuming: the timing matmuls draw from the global RNG, whose state the
  // checkpoint then restores.
  const double peak_flops = measure_matmul_peak(device).flops_per_s;

  // Resume: model, optimizer, step, RNG states and the task's position from the latest checkpoint.
  TrainState state;
  GuardState guard_state;
  SpikeDetector loss_spikes(safety.spike_window), grad_spikes(safety.spike_window);
  auto restore_guard = [&](const TrainState& from) {
    guard_state.load(from);
    loss_spikes.restore(from.extra.count("guard.loss_window") ? from.extra.at("guard.loss_window")
                                                              : "");
    grad_spikes.restore(
        from.extra.count("guard.grad_norm_window") ? from.extra.at("guard.grad_norm_window") : "");
  };
  state.tokenizer = task->tokenizer_fingerprint();  // a checkpoint of another tokenizer is an error
  bool resumed = false;
  {
    // Every rank loads the same checkpoint file (rank 0 writes it; ranks share the run dir).
    auto latest = resume_per_config(config, run_dir, model, optim.optimizer.get(), &state);
    if (latest) {
      // Checkpoints of older versions may hold a diverged model; never train on from one.
      const std::string bad = first_nonfinite(parameters_and_moments(model, *optim.optimizer));
      check_user(bad.empty(), "checkpoint '" + latest->path + "' holds a non-finite tensor ('" +
                                  bad + "'), written by a diverged run: delete it and " +
                                  checkpoint_dir(run_dir) +
                                  "/latest to resume from an earlier checkpoint, or start over "
                                  "with run.resume=never");
      task->load_state(state);
      restore_guard(state);
      grades.load(state.extra);
      resumed = true;
      if (is_main)
        std::cerr << "resumed from " << latest->path << " at step " << state.step << "\n";
    }
  }

  // A finished run (its last checkpoint at max_steps and its result.json written) run again with
  // the same command: report its result; nothing is trained, evaluated, logged or rewritten.
  const std::filesystem::path result_path = std::filesystem::path(run_dir) / "result.json";
  if (resumed && state.step >= max_steps && std::filesystem::exists(result_path)) {
    std::optional<TrainSummary> done = read_finished_summary(result_path.string(), task_label);
    if (done && done->step == state.step) {
      done->run_dir = run_dir;
      done->report = task->report(*done);
      return *done;
    }
    // unreadable or of another step: finish the run again (rewrites it)
  }

  // Validated: from here on the run directory is written.
  if (is_main) {
    config::prepare_run_directory(config, overrides, argv);
    lock->keep();
    std::cerr << "model: " << parameters << " parameters (" << parameters - embedding_parameters
              << " without embeddings)\n";
  }

  std::optional<MetricsLogger> metrics;
  if (is_main) {
    metrics.emplace(run_dir, resumed ? std::optional<int64_t>(state.step) : std::nullopt,
                    loop.tensorboard);
    metrics->log_text("config", "```\n" + config::to_yaml(config) + "\n```", state.step);
    metrics->log_hparams(hparams_from_overrides(overrides),
                         {"val/loss", "val/perplexity", "train/loss"});
  }
  auto log_metrics = [&](int64_t step, const std::map<std::string, double>& values) {
    if (!metrics) return;
    nlohmann::json record = {{"step", step}};
    for (const auto& [key, value] : values) record[key] = value;
    metrics->log(record);
  };
  Progress progress = Progress::from_config(config, max_steps, state.step);
  if (!is_main) progress = Progress("none", max_steps, 1);
  const double flops_per_token = task->flops_per_token();
  GradientReducer reducer(*dist, model,
                          static_cast<size_t>(dist->options().bucket_mb * 1024 * 1024));

  StopSignalHandlers stop_handlers;
  install_preemption_handler();

  auto save = [&](bool is_best) {
    task->save_state(state);
    guard_state.store(state);
    grades.save(state.extra);
    state.extra["guard.loss_window"] = loss_spikes.serialize();
    state.extra["guard.grad_norm_window"] = grad_spikes.serialize();
    state.scheduler = schedule->describe();
    SaveOptions options;
    options.keep_last = loop.keep_last;
    options.is_best = is_best;
    if (is_main)
      save_checkpoint(run_dir, model, optim.optimizer.get(), state, config::to_yaml(config),
                      options);
    dist->barrier();  // no rank runs ahead (or exits) before the checkpoint is durable
  };
  // Validation: logged, shown, and kept in the summary; returns whether it is the best so far.
  bool evaluated = false;
  auto run_eval = [&](TrainSummary& summary) {
    const TaskEvaluation result = task->evaluate();
    const bool best = result.loss < state.best_val_loss;
    if (best) state.best_val_loss = result.loss;
    log_metrics(state.step, result.metrics);
    progress.message("step " + std::to_string(state.step) + " " + result.line);
    auto metric = [&result](const std::string& key) {
      auto it = result.metrics.find(key);
      return it == result.metrics.end() ? 0.0 : it->second;
    };
    summary.val_loss = result.loss;
    summary.val_perplexity = metric("val/perplexity");
    summary.val_bits_per_byte = metric("val/bits_per_byte");
    evaluated = true;
    return best;
  };

  // Lines that must be seen (guard and spike warnings, GradES freezes): rank 0, on stderr even
  // with trainer.progress=none, above the bar otherwise.
  auto say = [&](const std::string& line) {
    if (!is_main) return;
    if (progress.mode() == Progress::Mode::kNone)
      std::cerr << line << std::endl;
    else
      progress.message(line);
  };
  auto warn = [&](const std::string& text) { say("warning: " + text); };

  // trainer.on_nonfinite=rollback needs a checkpoint to go back to from the first step on.
  // (Rank 0 decides: save() is collective.)
  if (safety.policy == NonFinitePolicy::kRollback && !resumed &&
      dist->broadcast_string(is_main && list_checkpoints(run_dir).empty() ? "1" : "0") == "1")
    save(false);

  auto last_good_checkpoint = [&]() -> std::string {
    try {
      return resolve_checkpoint(run_dir);
    } catch (const UserError&) {
      return "";
    }
  };
  auto halt = [&](int64_t step, const std::string& fault, const std::string& why_not_recovered) {
    const std::string last = last_good_checkpoint();
    throw UserError("training diverged at step " + std::to_string(step) + ": " + fault +
                    "; nothing of this step was saved; last good checkpoint: " +
                    (last.empty() ? "none" : last + " (running the same command resumes from it)") +
                    "; " + why_not_recovered);
  };
  // Reloads the newest checkpoint (all of them are finite) on every rank, keeps the sampler where
  // it is (so the data since that checkpoint, the offending batch included, is skipped), and
  // lowers the LR.
  auto roll_back = [&](int64_t step, const std::string& fault) {
    TrainState restored;
    auto loaded = resume_latest(run_dir, model, optim.optimizer.get(), &restored);
    if (!loaded) halt(step, fault, "no checkpoint to roll back to");
    GuardState counters = guard_state;
    restore_guard(restored);
    grades.load(restored.extra);
    guard_state = counters;
    guard_state.rollbacks += 1;
    guard_state.lr_scale *= safety.rollback_lr_factor;
    state = restored;
    if (metrics) {
      metrics.reset();  // drops the records logged after the checkpoint, as on resume
      metrics.emplace(run_dir, state.step, loop.tensorboard);
    }
    warn("step " + std::to_string(step) + ": " + fault + "; rolled back to " + loaded->path +
         " (step " + std::to_string(state.step) + "), LR scale now " +
         format_value(guard_state.lr_scale) + ", rollback " +
         std::to_string(guard_state.rollbacks) + " of " + std::to_string(safety.max_rollbacks));
  };
  int64_t consecutive_skips = 0;
  bool injected = false;
  // What a non-finite step does. `update_applied`: the optimizer already changed the weights,
  // which dropping the batch cannot undo.
  auto on_nonfinite = [&](const std::string& fault, bool update_applied) {
    const int64_t step = state.step + 1;
    switch (safety.policy) {
      case NonFinitePolicy::kHalt:
        halt(step, fault, "lower optim.lr, or set trainer.on_nonfinite=skip or rollback");
        break;
      case NonFinitePolicy::kSkip:
        if (update_applied)
          halt(step, fault,
               "trainer.on_nonfinite=skip cannot undo an update that was already applied (set "
               "trainer.on_nonfinite=rollback, or lower optim.lr)");
        if (consecutive_skips >= safety.max_consecutive_skips)
          halt(step, fault,
               "trainer.on_nonfinite=skip dropped " + std::to_string(consecutive_skips) +
                   " batches in a row (trainer.max_consecutive_skips); lower optim.lr");
        ++consecutive_skips;
        ++guard_state.skipped_batches;
        warn("step " + std::to_string(step) + ": " + fault + "; batch dropped (" +
             std::to_string(guard_state.skipped_batches) + " so far)");
        break;
      case NonFinitePolicy::kRollback:
        if (guard_state.rollbacks >= safety.max_rollbacks)
          halt(step, fault,
               std::to_string(guard_state.rollbacks) +
                   " rollbacks already (trainer.max_rollbacks); lower optim.lr");
        roll_back(step, fault);
        break;
    }
  };

  TrainSummary summary;
  summary.task = task_label;
  summary.run_dir = run_dir;
  summary.parameters = parameters;
  summary.non_embedding_parameters = parameters - embedding_parameters;
  double tokens_done = 0, examples_done = 0, seconds_done = 0;
  model.train();
  while (state.step < max_steps) {
    StepTiming timing;
    const double lr = loop.lr * schedule->lr_factor(state.step) * guard_state.lr_scale;
    set_learning_rate(optim, lr);
    clear_gradients(optim);
    // Loss terms stay on the device through the micro-steps and are read back once per step
    // (one host sync however many terms and micro-steps), in float64 as before.
    std::map<std::string, torch::Tensor> step_terms;
    auto add_term = [&](const std::string& name, const torch::Tensor& value) {
      auto term = value.detach().to(torch::kFloat64) / static_cast<double>(accum);
      auto it = step_terms.find(name);
      if (it == step_terms.end())
        step_terms.emplace(name, term);
      else
        it->second = it->second + term;
    };
    // Tokens and rows of this step over all ranks (each rank's count times the world size).
    int64_t step_tokens = 0, step_examples = 0;
    for (int64_t micro = 0; micro < accum; ++micro) {
      Batch batch = task->next_batch();
      step_tokens += task->tokens_in(batch) * dist->world_size();
      step_examples += batch.input.size(0) * dist->world_size();
      batch = batch_to_device(std::move(batch), device);
      reducer.begin_step(/*sync=*/micro == accum - 1);
      LossResult result;
      {
        AutocastGuard guard(loop.autocast_bf16, device);
        result = task->training_loss(batch);
      }
      (result.total / static_cast<double>(accum)).backward();
      add_term("train/loss", result.total);
      for (auto& [name, value] : result.terms) add_term("train/" + name, value);
    }
    std::map<std::string, double> logged = read_scalars(step_terms);
    reducer.finish();
    if (dist->is_distributed()) average_over_ranks(*dist, logged);
    if (safety.inject_at_step == state.step + 1 && !injected && !optim.trainable.empty() &&
        optim.trainable.front().grad().defined()) {
      injected = true;  // once per process: a rollback or skip then recovers
      optim.trainable.front().grad().view(-1)[0].fill_(std::numeric_limits<double>::quiet_NaN());
    }

    // The guard before the update: losses, then gradients (before clipping mixes them).
    std::string fault = nonfinite_loss(logged);
    if (fault.empty()) {
      const std::string bad = first_nonfinite(named_gradients(model));
      if (!bad.empty()) fault = "the gradient of '" + bad + "' is not finite";
    }
    if (!fault.empty()) {
      on_nonfinite(fault, /*update_applied=*/false);
      continue;
    }
    // GradES: converged matrices lose their gradient before clipping and the update.
    const std::vector<std::string> newly_frozen = grades.observe(state.step + 1);
    if (!newly_frozen.empty()) {
      std::string names;
      for (size_t i = 0; i < newly_frozen.size() && i < 4; ++i)
        names += (i ? ", " : "") + newly_frozen[i];
      if (newly_frozen.size() > 4) names += ", ...";
      say("GradES: step " + std::to_string(state.step + 1) + " froze " +
          std::to_string(newly_frozen.size()) + " matrices (" +
          std::to_string(grades.frozen_count()) + "/" + std::to_string(grades.monitored_count()) +
          " frozen): " + names);
    }
    const double grad_norm = clip_gradients(optim);
    if (!std::isfinite(grad_norm)) {
      on_nonfinite("the gradient norm is " + format_value(grad_norm) +
                       " (the gradients are finite; their norm overflows)",
                   /*update_applied=*/false);
      continue;
    }
    const double loss = logged["train/loss"];
    if (safety.spike_window > 0) {
      const double loss_z = loss_spikes.zscore(loss), grad_z = grad_spikes.zscore(grad_norm);
      if (loss_z > safety.spike_zscore || grad_z > safety.spike_zscore) {
        ++guard_state.spikes;
        const bool drop = safety.spike_skip && consecutive_skips < safety.max_consecutive_skips;
        warn("step " + std::to_string(state.step + 1) + ": spike, loss " + format_value(loss) +
             " (z-score " + format_value(loss_z) + "), grad norm " + format_value(grad_norm) +
             " (z-score " + format_value(grad_z) + ") over the last " +
             std::to_string(safety.spike_window) + " steps" + (drop ? "; batch dropped" : ""));
        if (drop) {
          ++consecutive_skips;
          ++guard_state.spike_skips;
          continue;
        }
      }
    }
    try {
      optim.optimizer->step();
    } catch (const std::exception& error) {
      // e.g. optim.lr=1e38: the step size overflows float (c10::report_overflow throws a plain
      // std::runtime_error). Some parameters may be updated.
      const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
      const std::string what = c10_error ? c10_error->what_without_backtrace() : error.what();
      on_nonfinite("the optimizer update failed (" + what.substr(0, what.find('\n')) + ")",
                   /*update_applied=*/true);
      continue;
    }
    {
      const std::string bad = first_nonfinite(parameters_and_moments(model, *optim.optimizer));
      if (!bad.empty()) {
        on_nonfinite("the update made '" + bad + "' non-finite", /*update_applied=*/true);
        continue;
      }
    }
    consecutive_skips = 0;
    loss_spikes.push(loss);
    grad_spikes.push(grad_norm);
    ++state.step;

    const double step_seconds = timing.seconds();
    tokens_done += static_cast<double>(step_tokens);
    examples_done += static_cast<double>(step_examples);
    seconds_done += step_seconds;
    state.tokens_seen += step_tokens;
    logged["lr"] = lr;
    logged["grad_norm"] = grad_norm;
    logged["tokens_per_s"] = static_cast<double>(step_tokens) / step_seconds;
    logged["examples_per_s"] = static_cast<double>(step_examples) / step_seconds;
    logged["mfu"] = compute_mfu(flops_per_token, static_cast<double>(step_tokens) / step_seconds,
                                peak_flops * dist->world_size());
    logged["step_ms"] = step_seconds * 1000.0;
    guard_state.add_metrics(logged);
    if (grades.enabled()) logged["grades/frozen"] = static_cast<double>(grades.frozen_count());
    summary.train_loss = loss;
    if (state.step % loop.log_every == 0 || state.step == max_steps) {
      logged["peak_rss_mib"] = peak_rss_mib();
      if (dist->is_distributed())
        logged["exposed_comm_ms"] = reducer.stats().last_exposed_comm_s * 1000;
      log_metrics(state.step, logged);
    }
    progress.update({state.step, summary.train_loss, lr, logged["tokens_per_s"], logged["mfu"]});

    bool best = false;
    if ((loop.eval_every > 0 && state.step % loop.eval_every == 0) || state.step == max_steps)
      best = run_eval(summary);
    const int local_signal = received_stop_signal.load();
    const bool stop = dist->allreduce_any(local_signal != 0 || preemption_requested()) ||
                      state.step == loop.halt_at_step;
    if ((loop.checkpoint_every > 0 && state.step % loop.checkpoint_every == 0) ||
        state.step == max_steps || stop || best)
      save(best);
    if (stop) {
      summary.interrupted = state.step < max_steps;
      summary.stop_signal = local_signal;
      if (preemption_requested() && is_main) {
        // Said before requeueing: `scontrol requeue` makes Slurm kill this job right away.
        std::cerr << "pre-empted at step " << state.step << ": checkpoint saved, requeueing"
                  << std::endl;
        std::string message;
        if (!requeue_slurm_job(&message)) std::cerr << "not requeued: " << message << std::endl;
      }
      break;
    }
  }
  progress.finish();
  // A run resumed at (or configured with) its last step trains nothing: evaluate once so the
  // summary and result.json still report the model's validation metrics.
  if (!summary.interrupted && !evaluated) run_eval(summary);
  summary.step = state.step;
  summary.tokens_per_second = seconds_done > 0 ? tokens_done / seconds_done : 0.0;
  summary.examples_per_second = seconds_done > 0 ? examples_done / seconds_done : 0.0;
  if (!summary.interrupted) task->finish(summary, metrics ? &*metrics : nullptr);
  if (metrics) metrics->finish(!summary.interrupted);
  // result.json marks a finished run (sweeps skip jobs that have one).
  if (is_main && !summary.interrupted)
    write_file_atomic(run_dir + "/result.json", summary_to_json(summary).dump(2) + "\n");
  summary.report = task->report(summary);
  return summary;
}

}  // namespace
}  // namespace attnlab
