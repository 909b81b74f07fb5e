// The classification training loop; see classification_trainer.h. Order of one step (fixed, so a
// resumed run replays exactly): lr from the schedule -> grad_accum_steps micro-batches (sampler,
// forward, LossSet, backward) -> clip -> AdamW step -> metrics -> eval every trainer.eval_every
// -> checkpoint every trainer.checkpoint_every.
#include "trainer/classification/classification_trainer.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

#include "common/config_access.h"
#include "common/error.h"
#include "data/data_cache.h"
#include "data/labelled_dataset.h"
#include "data/tokenizer.h"
#include "losses/loss_set.h"
#include "modules/sequence_classifier.h"
#include "trainer/atomic_file.h"
#include "trainer/checkpoint.h"
#include "trainer/classification/classification_data.h"
#include "config/run_directory.h"
#include "config/yaml_io.h"
#include "distributed/preemption.h"
#include "trainer/lr_schedule.h"
#include "trainer/metrics_logger.h"
#include "trainer/optimizer.h"
#include "trainer/progress.h"
#include "trainer/run_setup.h"
#include "trainer/weights_io.h"

namespace attnlab {

namespace {

struct SplitEval {
  double loss = 0.0;
  ClassificationMetrics metrics;
};

// Mean LossSet total over the examples (batch losses weighted by batch size) and the metrics of
// the argmax predictions.
SplitEval evaluate_split(SequenceClassifierImpl& model, const LossSet& losses,
                         const std::vector<Batch>& batches, const torch::Device& device,
                         const std::vector<std::string>& classes) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<int64_t> labels, predictions;
  double loss_sum = 0.0;
  for (const Batch& cpu : batches) {
    Batch batch = batch_to_device(cpu, device);
    ModelOutput output = model.forward(batch.input, batch.key_padding, losses.taps());
    loss_sum += losses.compute(output, batch).total.item<double>() * batch.labels.size(0);
    auto predicted = output.logits.argmax(-1).to(torch::kCPU).contiguous();
    auto truth = cpu.labels.contiguous();
    predictions.insert(predictions.end(), predicted.data_ptr<int64_t>(),
                       predicted.data_ptr<int64_t>() + predicted.numel());
    labels.insert(labels.end(), truth.data_ptr<int64_t>(),
                  truth.data_ptr<int64_t>() + truth.numel());
  }
  if (was_training) model.train();
  SplitEval result;
  result.metrics = classification_metrics(labels, predictions, classes);
  result.loss = labels.empty() ? 0.0 : loss_sum / static_cast<double>(labels.size());
  return result;
}

void log_split(std::map<std::string, double>& record, const std::string& split,
               const SplitEval& eval) {
  record[split + "/loss"] = eval.loss;
  for (const auto& [key, value] : flat_metrics(eval.metrics, split + "/")) record[key] = value;
}

nlohmann::json summary_json(const ClassificationSummary& s) {
  nlohmann::json out = {{"run_dir", s.run_dir},       {"step", s.step},
                        {"train_loss", s.train_loss}, {"val_loss", s.val_loss},
                        {"test_loss", s.test_loss},   {"examples_per_s", s.examples_per_second}};
  for (const auto& [key, value] : flat_metrics(s.val, "val/")) out[key] = value;
  for (const auto& [key, value] : flat_metrics(s.test, "test/")) out[key] = value;
  return out;
}

std::string split_sizes(const std::vector<int64_t>& counts, const std::vector<std::string>& names) {
  std::string out;
  for (size_t c = 0; c < counts.size(); ++c)
    out += (c ? ", " : "") + names[c] + " " + std::to_string(counts[c]);
  return out;
}

}  // namespace

std::string task_name(const YAML::Node& config) {
  const std::string name = cfg::get_or<std::string>(config, "task.name", "lm");
  check_user(name == "lm" || name == "classification",
             "config key 'task.name': expected lm or classification, got '" + name + "'");
  return name;
}

std::string classification_report(const ClassificationSummary& s) {
  if (s.interrupted)
    return "stopped at step " + std::to_string(s.step) +
           "; resume with the same command (run.dir=" + s.run_dir + ")\n";
  char line[256];
  std::snprintf(line, sizeof(line),
                "final: step %lld | val loss %.4f | val macro-F1 %.4f | test acc %.4f | test "
                "macro-F1 %.4f | %.1f examples/s\n",
                static_cast<long long>(s.step), s.val_loss, s.val.macro_f1, s.test.accuracy,
                s.test.macro_f1, s.examples_per_second);
  return metrics_to_markdown(s.test, "test (final model)") + "\n" + line + "run dir: " + s.run_dir +
         "\n";
}

ClassificationSummary train_classification(const YAML::Node& config,
                                           const std::vector<std::string>& overrides,
                                           const std::vector<std::string>& argv) {
  configure_threads(config);
  const torch::Device device = device_from_config(config);
  const int64_t seed = cfg::get<int64_t>(config, "seed");
  // As in the LM trainer: the run directory is locked first, and nothing in it is written before
  // data, model, init_from and the existing checkpoint were validated.
  const std::string run_dir = config::run_directory_path(config);
  config::RunDirectoryLock lock(run_dir);
  for (const auto& file : lock.remove_stale_temporaries())
    std::cerr << "removed " << file << ", left by a process that died while writing it\n";

  // Data: the fixed stratified split, then tokens (BOS = [CLS] + truncated text).
  const LabelledDataset dataset = load_labelled_dataset(config);
  const StratifiedSplit split = split_from_config(dataset, config);
  const auto num_classes = static_cast<int64_t>(dataset.classes.size());
  const std::vector<int64_t> train_counts = class_counts(split.train, num_classes);
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(config, [&split] {
    std::vector<std::string> texts;
    for (const auto& example : split.train) texts.push_back(example.text);
    return texts;
  });
  const int64_t seq_len = cfg::get<int64_t>(config, "data.seq_len");
  const int64_t max_text_bytes = cfg::get_or<int64_t>(config, "data.max_text_bytes", 0);
  const EncodedExamples train_set =
      encode_examples(split.train, *tokenizer, seq_len, max_text_bytes);
  const int64_t eval_batch = cfg::get_or<int64_t>(config, "task.eval_batch_size", 64);
  const int32_t pad = tokenizer->pad();
  const auto val_batches = ordered_batches(
      encode_examples(split.val, *tokenizer, seq_len, max_text_bytes), eval_batch, pad);
  const auto test_batches = ordered_batches(
      encode_examples(split.test, *tokenizer, seq_len, max_text_bytes), eval_batch, pad);
  std::cerr << "classification: " << dataset.examples.size() << " examples; train "
            << split_sizes(train_counts, dataset.classes) << "; val " << split.val.size()
            << ", test " << split.test.size() << "\n";

  torch::manual_seed(seed);
  SequenceClassifier model(gpt_options_from_config(config, tokenizer->vocab_size()), num_classes,
                           parse_pooling(cfg::get_or<std::string>(config, "task.pooling", "cls")));
  if (cfg::has(config, "init_from")) {
    // An LM run's weights: everything but the fresh classifier head (init_from_config warns with
    // the report when something is missing, as the head always is).
    LoadReport report = init_from_config(*model, config);
    if (report.complete()) std::cerr << "init_from: " << report.summary() << "\n";
  }
  model->to(device);

  OptimizerSetup optim = make_optimizer(*model, config);
  std::unique_ptr<LrSchedule> schedule = make_schedule(config);
  LossSet losses(config, model->options().n_layers);
  losses.set_class_counts(train_counts);
  const int64_t batch_size = cfg::get<int64_t>(config, "data.batch_size");
  ExampleSampler sampler(train_set.size(), batch_size, static_cast<uint64_t>(seed));

  const int64_t max_steps = cfg::get<int64_t>(config, "trainer.max_steps");
  const int64_t accum = cfg::get_or<int64_t>(config, "trainer.grad_accum_steps", 1);
  const int64_t eval_every = cfg::get_or<int64_t>(config, "trainer.eval_every", 0);
  const int64_t checkpoint_every = cfg::get_or<int64_t>(config, "trainer.checkpoint_every", 0);
  const int64_t log_every =
      std::max<int64_t>(1, cfg::get_or<int64_t>(config, "trainer.log_every", 10));
  const int64_t halt_at = cfg::get_or<int64_t>(config, "trainer.halt_at_step", -1);
  check_user(accum >= 1, "trainer.grad_accum_steps must be >= 1");
  check_user(max_steps >= 0, "trainer.max_steps must be >= 0");

  TrainState state;
  bool resumed = false;
  {
    auto latest = resume_per_config(config, run_dir, *model, optim.optimizer.get(), &state);
    if (latest) {
      sampler.load_state(state.sampler_state);
      resumed = true;
      std::cerr << "resumed from " << latest->path << " at step " << state.step << "\n";
    }
  }

  config::prepare_run_directory(config, overrides, argv);  // validated: the run starts writing
  lock.keep();
  MetricsLogger metrics(run_dir, resumed ? std::optional<int64_t>(state.step) : std::nullopt,
                        cfg::get_or<bool>(config, "trainer.tensorboard", true));
  auto log_record = [&](const std::map<std::string, double>& values) {
    nlohmann::json record = {{"step", state.step}};
    for (const auto& [key, value] : values) record[key] = value;
    metrics.log(record);
  };
  Progress progress = Progress::from_config(config, max_steps, state.step);
  for (int signal : {SIGUSR1, SIGINT, SIGTERM}) install_preemption_handler(signal);
  clear_preemption();

  auto save = [&](bool is_best) {
    state.sampler_state = sampler.state();
    state.scheduler = schedule->describe();
    SaveOptions options;
    options.keep_last = cfg::get_or<int64_t>(config, "trainer.keep_last", 2);
    options.is_best = is_best;
    save_checkpoint(run_dir, *model, optim.optimizer.get(), state, config::to_yaml(config),
                    options);
  };
  auto run_eval = [&]() {
    SplitEval val = evaluate_split(*model, losses, val_batches, device, dataset.classes);
    const bool best = val.loss < state.best_val_loss;
    if (best) state.best_val_loss = val.loss;
    std::map<std::string, double> record;
    log_split(record, "val", val);
    log_record(record);
    progress.message("step " + std::to_string(state.step) + " val loss " +
                     std::to_string(val.loss) + " acc " + std::to_string(val.metrics.accuracy) +
                     " macro-F1 " + std::to_string(val.metrics.macro_f1));
    return best;
  };

  ClassificationSummary summary;
  summary.run_dir = run_dir;
  double examples_done = 0, seconds_done = 0;
  model->train();
  while (state.step < max_steps) {
    const auto start = std::chrono::steady_clock::now();
    const double lr = cfg::get<double>(config, "optim.lr") * schedule->lr_factor(state.step);
    set_learning_rate(optim, lr);
    clear_gradients(optim);
    std::map<std::string, double> logged;
    int64_t tokens = 0;
    for (int64_t micro = 0; micro < accum; ++micro) {
      Batch batch = make_example_batch(train_set, sampler.next(), pad);
      tokens += batch.key_padding.sum().item<int64_t>();
      batch = batch_to_device(batch, device);
      LossResult result =
          losses.compute(model->forward(batch.input, batch.key_padding, losses.taps()), batch);
      (result.total / static_cast<double>(accum)).backward();
      logged["train/loss"] += result.total.item<double>() / accum;
      for (auto& [name, value] : result.terms)
        logged["train/" + name] += value.item<double>() / accum;
    }
    const double grad_norm = clip_gradients(optim);
    optim.optimizer->step();
    ++state.step;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    examples_done += static_cast<double>(batch_size * accum);
    seconds_done += seconds;
    state.tokens_seen += tokens;
    summary.train_loss = logged["train/loss"];
    if (!std::isfinite(summary.train_loss))
      throw UserError("training diverged: loss is " + std::to_string(summary.train_loss) +
                      " at step " + std::to_string(state.step) + " (lower optim.lr?)");
    logged["lr"] = lr;
    logged["grad_norm"] = grad_norm;
    logged["tokens_per_s"] = static_cast<double>(tokens) / seconds;
    logged["examples_per_s"] = static_cast<double>(batch_size * accum) / seconds;
    if (state.step % log_every == 0 || state.step == max_steps) {
      logged["peak_rss_mib"] = peak_rss_mib();
      log_record(logged);
    }
    progress.update({state.step, summary.train_loss, lr, logged["tokens_per_s"], -1.0});

    bool best = false;
    if ((eval_every > 0 && state.step % eval_every == 0) || state.step == max_steps)
      best = run_eval();
    const bool stop = preemption_requested() || state.step == halt_at;
    if ((checkpoint_every > 0 && state.step % checkpoint_every == 0) || state.step == max_steps ||
        stop || best)
      save(best);
    if (stop) {
      summary.interrupted = state.step < max_steps;
      break;
    }
  }
  progress.finish();
  summary.step = state.step;
  summary.examples_per_second = seconds_done > 0 ? examples_done / seconds_done : 0.0;
  if (summary.interrupted) return summary;

  // The final model on both held-out splits.
  SplitEval val = evaluate_split(*model, losses, val_batches, device, dataset.classes);
  SplitEval test = evaluate_split(*model, losses, test_batches, device, dataset.classes);
  summary.val_loss = val.loss;
  summary.test_loss = test.loss;
  summary.val = val.metrics;
  summary.test = test.metrics;
  std::map<std::string, double> record;
  log_split(record, "test", test);
  log_record(record);
  const nlohmann::json report = {{"step", state.step},
                                 {"val", metrics_to_json(val.metrics)},
                                 {"test", metrics_to_json(test.metrics)}};
  write_file_atomic(run_dir + "/classification_metrics.json", report.dump(2) + "\n");
  write_file_atomic(run_dir + "/classification_metrics.md",
                    "# Classification metrics (step " + std::to_string(state.step) + ")\n\n" +
                        metrics_to_markdown(test.metrics, "test") + "\n" +
                        metrics_to_markdown(val.metrics, "val"));
  write_file_atomic(run_dir + "/result.json", summary_json(summary).dump(2) + "\n");
  return summary;
}

}  // namespace attnlab
