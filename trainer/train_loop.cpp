// The training loop; see train_loop.h. Order of one optimizer step (fixed, so that a resumed run
// replays exactly): lr from the schedule -> grad_accum_steps micro-batches (sampler.next(),
// objective forward, backward; gradients all-reduced on the last) -> clip -> AdamW step ->
// metrics -> eval every trainer.eval_every -> checkpoint every trainer.checkpoint_every.
#include "trainer/train_loop.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/config_access.h"
#include "common/error.h"
#include "data/prepare.h"
#include "data/sampler.h"
#include "data/tokenizer.h"
#include "losses/loss_set.h"
#include "modules/attention/moh.h"
#include "trainer/atomic_file.h"
#include "trainer/autocast.h"
#include "trainer/checkpoint.h"
#include "trainer/config/run_directory.h"
#include "trainer/config/yaml_io.h"
#include "trainer/distributed/distributed.h"
#include "trainer/distributed/gradient_reducer.h"
#include "trainer/distributed/preemption.h"
#include "trainer/evaluator.h"
#include "trainer/lr_schedule.h"
#include "trainer/metrics_logger.h"
#include "trainer/mfu.h"
#include "trainer/objective.h"
#include "trainer/optimizer.h"
#include "trainer/progress.h"
#include "trainer/run_setup.h"
#include "trainer/weights_io.h"

namespace attnlab {

namespace {

std::atomic<bool> stop_signal{false};
extern "C" void on_stop_signal(int) { stop_signal = true; }

struct StepTiming {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

// The objective's generator state travels in TrainState::extra as raw bytes.
std::string generator_state(const torch::Generator& generator) {
  auto bytes = generator.get_state().contiguous();
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel());
}

void set_generator_state(torch::Generator& generator, const std::string& state) {
  auto bytes = torch::empty({static_cast<int64_t>(state.size())}, torch::kUInt8);
  std::memcpy(bytes.data_ptr<uint8_t>(), state.data(), state.size());
  generator.set_state(bytes);
}

// init_from: weights only, strict or partial (init_strict). An `mha` source loaded into a `moh`
// model is converted first (q/k/v -> qkv, out_proj -> proj, routers freshly initialised).
void load_initial_weights(const YAML::Node& config, GptImpl& model, bool is_main) {
  const std::string source = cfg::get<std::string>(config, "init_from");
  TensorMap weights = read_weights(source);
  const bool source_is_mha = weights.count("blocks.0.attn.q_proj.weight") > 0;
  if (cfg::get<std::string>(config, "attention.name") == "moh" && source_is_mha)
    weights = convert_mha_to_moh(weights, state_dict(model));
  LoadReport report = load_state_dict(model, weights, cfg::get_or<bool>(config, "init_strict", false));
  if (is_main) std::cerr << "init_from " << source << ":\n" << report.summary() << "\n";
}

nlohmann::json summary_to_json(const TrainSummary& s) {
  return {{"run_dir", s.run_dir},         {"step", s.step},
          {"train_loss", s.train_loss},   {"val_loss", s.val_loss},
          {"val_perplexity", s.val_perplexity}, {"val_bits_per_byte", s.val_bits_per_byte},
          {"tokens_per_s", s.tokens_per_second}};
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

namespace {

TrainSummary train_body(const YAML::Node& config, const std::vector<std::string>& overrides,
                        const std::vector<std::string>& argv,
                        const std::shared_ptr<DistributedContext>& dist) {
  const bool is_main = dist->is_main();
  const int threads = configure_threads(config);
  const torch::Device device = device_from_config(config);
  const int64_t seed = cfg::get<int64_t>(config, "seed");

  // Run directory: rank 0 creates it (the name may hold a timestamp) and tells the others.
  std::string run_dir;
  if (is_main) run_dir = config::prepare_run_directory(config, overrides, argv).path;
  run_dir = dist->broadcast_string(run_dir);

  // Data: rank 0 fetches/tokenises first so ranks never race on the cache.
  if (is_main) prepare_data(config);
  dist->barrier();
  PreparedData data = prepare_data(config);
  const Tokenizer& tokenizer = *data.tokenizer;

  Gpt model = build_model(config, tokenizer.vocab_size());
  if (cfg::has(config, "init_from")) load_initial_weights(config, *model, is_main);
  model->to(device);
  dist->broadcast_module(*model);

  OptimizerSetup optim = make_optimizer(*model, config);
  std::unique_ptr<LrSchedule> schedule = make_schedule(config);
  LossSet losses(config, model->options().n_layers);
  auto objective = objective_registry().get(
      cfg::get_or<std::string>(config, "objective.name", "autoregressive"))(config);
  ObjectiveContext objective_context;
  objective_context.config = &config;
  objective_context.mask_token = tokenizer.mask();
  objective_context.bos_token = tokenizer.bos();
  objective_context.generator = at::detail::createCPUGenerator(seed + 7919 * dist->rank());

  auto sampler = make_sampler(config, data.train, dist->rank(), dist->world_size());
  const int64_t batch_size = cfg::get<int64_t>(config, "data.batch_size");
  const int64_t seq_len = cfg::get<int64_t>(config, "data.seq_len");
  const auto eval_set = eval_batches(*data.val, cfg::get_or<int64_t>(config, "trainer.eval_batches", 20),
                                     batch_size, seq_len);

  const int64_t max_steps = cfg::get<int64_t>(config, "trainer.max_steps");
  const int64_t accum = cfg::get_or<int64_t>(config, "trainer.grad_accum_steps", 1);
  const int64_t eval_every = cfg::get_or<int64_t>(config, "trainer.eval_every", 0);
  const int64_t checkpoint_every = cfg::get_or<int64_t>(config, "trainer.checkpoint_every", 0);
  const int64_t log_every = std::max<int64_t>(1, cfg::get_or<int64_t>(config, "trainer.log_every", 10));
  const int64_t halt_at = cfg::get_or<int64_t>(config, "trainer.halt_at_step", -1);
  const bool autocast = cfg::get_or<bool>(config, "trainer.autocast_bf16", false);
  check_user(accum >= 1, "trainer.grad_accum_steps must be >= 1");
  check_user(max_steps >= 0, "trainer.max_steps must be >= 0");

  // Measured before resuming: the timing matmuls draw from the global RNG, whose state the
  // checkpoint then restores.
  const double peak_flops = measure_matmul_peak(device).flops_per_s;

  // Resume: model, optimizer, step, RNG states and sampler position from the latest checkpoint.
  TrainState state;
  state.tokenizer = tokenizer.fingerprint();  // a checkpoint of another tokenizer is an error
  bool resumed = false;
  {
    // Every rank loads the same checkpoint file (rank 0 writes it; ranks share the run dir).
    auto latest = resume_per_config(config, run_dir, *model, optim.optimizer.get(), &state);
    if (latest) {
      sampler->load_state(state.sampler_state);
      // Each rank continues its own objective RNG stream (ranks draw different masking noise);
      // "objective_rng" is rank 0's, for single-process runs and a changed world size.
      const std::string own = "objective_rng.rank" + std::to_string(dist->rank());
      if (dist->is_distributed() && state.extra.count(own))
        set_generator_state(objective_context.generator, state.extra.at(own));
      else if (state.extra.count("objective_rng"))
        set_generator_state(objective_context.generator, state.extra.at("objective_rng"));
      resumed = true;
      if (is_main) std::cerr << "resumed from " << latest->path << " at step " << state.step << "\n";
    }
  }

  std::optional<MetricsLogger> metrics;
  if (is_main) metrics.emplace(run_dir, resumed ? std::optional<int64_t>(state.step) : std::nullopt);
  auto log_metrics = [&](int64_t step, const std::map<std::string, double>& values) {
    if (!metrics) return;
    nlohmann::json record = {{"step", step}};
    for (const auto& [key, value] : values) record[key] = value;
    metrics->log(record);
  };
  Progress progress = Progress::from_config(config, max_steps, state.step);
  if (!is_main) progress = Progress("none", max_steps, 1);
  const double flops_per_token = gpt_flops_per_token(*model, seq_len);
  (void)threads;
  GradientReducer reducer(*dist, *model,
                          static_cast<size_t>(dist->options().bucket_mb * 1024 * 1024));

  stop_signal = false;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  install_preemption_handler();

  auto save = [&](bool is_best) {
    state.sampler_state = sampler->state();
    state.extra["objective_rng"] = generator_state(objective_context.generator);
    for (int r = 0; dist->is_distributed() && r < dist->world_size(); ++r) {
      state.extra["objective_rng.rank" + std::to_string(r)] =
          dist->broadcast_string(generator_state(objective_context.generator), r);
    }
    state.scheduler = schedule->describe();
    SaveOptions options;
    options.keep_last = cfg::get_or<int64_t>(config, "trainer.keep_last", 2);
    options.is_best = is_best;
    if (is_main)
      save_checkpoint(run_dir, *model, optim.optimizer.get(), state, config::to_yaml(config), options);
    dist->barrier();  // no rank runs ahead (or exits) before the checkpoint is durable
  };
  auto run_eval = [&]() {
    EvalResult result = evaluate(*model, *objective, losses, objective_context, eval_set, *dist,
                                 device, data.val_bytes_per_token());
    const bool best = result.loss < state.best_val_loss;
    if (best) state.best_val_loss = result.loss;
    log_metrics(state.step, {{"val/loss", result.loss},
                             {"val/perplexity", result.perplexity},
                             {"val/bits_per_byte", result.bits_per_byte}});
    progress.message("step " + std::to_string(state.step) + " val loss " +
                  std::to_string(result.loss) + " ppl " + std::to_string(result.perplexity));
    return std::make_pair(result, best);
  };

  TrainSummary summary;
  summary.run_dir = run_dir;
  double tokens_done = 0, seconds_done = 0;
  const int64_t tokens_per_step =
      batch_size * seq_len * accum * dist->world_size();
  model->train();
  while (state.step < max_steps) {
    StepTiming timing;
    const double lr = cfg::get<double>(config, "optim.lr") * schedule->lr_factor(state.step);
    set_learning_rate(optim, lr);
    clear_gradients(optim);
    std::map<std::string, double> logged;
    for (int64_t micro = 0; micro < accum; ++micro) {
      Batch batch = sampler->next();
      batch.input = batch.input.to(device);
      batch.target = batch.target.to(device);
      reducer.begin_step(/*sync=*/micro == accum - 1);
      LossResult result;
      {
        AutocastGuard guard(autocast, device);
        result = objective->compute(*model, batch, losses, objective_context, /*training=*/true);
      }
      (result.total / static_cast<double>(accum)).backward();
      logged["train/loss"] += result.total.item<double>() / accum;
      for (auto& [name, value] : result.terms) logged["train/" + name] += value.item<double>() / accum;
    }
    reducer.finish();
    if (dist->is_distributed()) average_over_ranks(*dist, logged);
    const double grad_norm = clip_gradients(optim);
    optim.optimizer->step();
    ++state.step;

    const double step_seconds = timing.seconds();
    tokens_done += tokens_per_step;
    seconds_done += step_seconds;
    logged["lr"] = lr;
    logged["grad_norm"] = grad_norm;
    logged["tokens_per_s"] = tokens_per_step / step_seconds;
    logged["mfu"] = compute_mfu(flops_per_token, tokens_per_step / step_seconds, peak_flops * dist->world_size());
    logged["step_ms"] = step_seconds * 1000.0;
    summary.train_loss = logged["train/loss"];
    if (!std::isfinite(summary.train_loss))
      throw UserError("training diverged: loss is " + std::to_string(summary.train_loss) +
                      " at step " + std::to_string(state.step) + " (lower optim.lr?)");
    if (state.step % log_every == 0 || state.step == max_steps) {
      logged["peak_rss_mib"] = peak_rss_mib();
      if (dist->is_distributed()) logged["exposed_comm_ms"] = reducer.stats().last_exposed_comm_s * 1000;
      log_metrics(state.step, logged);
    }
    progress.update({state.step, summary.train_loss, lr, logged["tokens_per_s"], logged["mfu"]});

    bool best = false;
    if ((eval_every > 0 && state.step % eval_every == 0) || state.step == max_steps) {
      auto [result, is_best] = run_eval();
      summary.val_loss = result.loss;
      summary.val_perplexity = result.perplexity;
      summary.val_bits_per_byte = result.bits_per_byte;
      best = is_best;
    }
    const bool stop = dist->allreduce_any(stop_signal.load() || preemption_requested()) ||
                      state.step == halt_at;
    if ((checkpoint_every > 0 && state.step % checkpoint_every == 0) || state.step == max_steps ||
        stop || best)
      save(best);
    if (stop) {
      summary.interrupted = state.step < max_steps;
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
  if (!summary.interrupted && summary.val_perplexity == 0.0) {
    auto [result, is_best] = run_eval();
    summary.val_loss = result.loss;
    summary.val_perplexity = result.perplexity;
    summary.val_bits_per_byte = result.bits_per_byte;
  }
  summary.step = state.step;
  summary.tokens_per_second = seconds_done > 0 ? tokens_done / seconds_done : 0.0;
  // result.json marks a finished run (sweeps skip jobs that have one).
  if (is_main && !summary.interrupted)
    write_file_atomic(run_dir + "/result.json", summary_to_json(summary).dump(2) + "\n");
  return summary;
}

}  // namespace
}  // namespace attnlab
