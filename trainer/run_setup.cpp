// See run_setup.h.
#include "trainer/run_setup.h"

#include <yaml-cpp/yaml.h>

#include <iostream>
#include <thread>

#include "common/config_access.h"
#include "common/error.h"
#include "common/error_log.h"
#include "device/cuda_device.h"

namespace attnlab {

torch::Device device_from_config(const YAML::Node& config) {
  return device_from_config(TrainerOptions::from_config(config));
}

torch::Device device_from_config(const TrainerOptions& options) {
  const std::string& name = options.runtime().device();
  // The GPU count is only asked for when a GPU could be meant (it loads the CUDA driver).
  const bool cpu = name == "cpu";
  const torch::Device device =
      resolve_device(name, cpu ? 0 : cuda_device_count(), local_rank_from_env());
  use_device(device);
  if (device.is_cuda() && options.loop().autocast_bf16()) {
    const CudaDeviceInfo info = cuda_device_info(device.index());
    check_user(info.supports_bf16, "trainer.autocast_bf16=true: " + device.str() + " (" +
                                       info.name + ", compute capability " +
                                       std::to_string(info.major) + "." +
                                       std::to_string(info.minor) +
                                       ") has no bfloat16 support (needs 8.0 or newer); set "
                                       "trainer.autocast_bf16=false");
  }
  configure_determinism(options.runtime().deterministic());
  return device;
}

int configure_threads(const YAML::Node& config) {
  return configure_threads(TrainerOptions::from_config(config).runtime());
}

int configure_threads(const RuntimeOptions& options) {
  int64_t threads = options.threads();
  const int cores = available_cores();
  if (threads == 0) threads = cores;
  // More threads than cores only adds contention, and a huge count (100000) makes OpenMP start
  // that many threads, which stalls the machine.
  if (threads > cores) {
    std::cerr << "warning: trainer.threads=" << threads << " is more than the " << cores
              << " cores available; using " << cores << "\n";
    threads = cores;
  }
  // Sets LibTorch's OpenMP pool and its bundled MKL's thread count together.
  torch::set_num_threads(static_cast<int>(threads));
  return static_cast<int>(threads);
}

Batch batch_to_device(Batch batch, const torch::Device& device) {
  for (torch::Tensor* tensor :
       {&batch.input, &batch.target, &batch.loss_mask, &batch.key_padding, &batch.labels})
    if (tensor->defined()) *tensor = tensor->to(device);
  return batch;
}

Gpt build_model(const YAML::Node& config, int64_t vocab_size) {
  torch::manual_seed(cfg::get<int64_t>(config, "seed"));
  return Gpt(gpt_options_from_config(config, vocab_size));
}

}  // namespace attnlab

#include <filesystem>

#include "config/config.h"
#include "config/moved_keys.h"
#include "config/yaml_io.h"
#include "interop/hf/pretrained_config.h"
#include "io/weights_io.h"
#include "trainer/checkpoint.h"
#include "trainer/finetune.h"
#include "trainer/weight_sources.h"

namespace attnlab {

std::string choose_checkpoint(const std::string& run_dir, const std::string& which) {
  namespace fs = std::filesystem;
  const fs::path best = fs::path(checkpoint_dir(run_dir)) / "best.ckpt";
  if (which == "best" && fs::is_directory(run_dir) && fs::exists(best)) return best.string();
  if (which == "best" || which == "latest") return resolve_checkpoint(run_dir);
  return resolve_checkpoint(which);
}

namespace {

// The run's saved config.yaml with `overrides`, read through the config engine's loader, so a
// damaged or hostile file meets the same input limits (size, depth, aliases) as any config file;
// a run made before a key moved is read with the key in its new place (config/moved_keys.h).
// Threads and device are set from it.
YAML::Node load_run_config(const std::string& run_dir, const std::vector<std::string>& overrides,
                           torch::Device& device) {
  namespace fs = std::filesystem;
  const fs::path config_path = fs::path(run_dir) / "config.yaml";
  check_user(fs::exists(config_path),
             "run_dir=" + run_dir + " has no config.yaml (is it an attnlab run directory?)");
  YAML::Node saved = config::load_saved_config(config_path.string());
  set_error_log_directory(run_dir);  // a failure's full report goes to the run's error.log
  YAML::Node config = config::apply_overrides_to_saved(saved, overrides);
  const TrainerOptions trainer = TrainerOptions::from_config(config);  // bound once
  configure_threads(trainer.runtime());
  device = device_from_config(trainer);
  return config;
}

// Loads `checkpoint` into `model` (strict) after checking its tokenizer; returns its path. A
// checkpoint that does not fit is one line: the overrides that changed the model, else the first
// tensor that does not fit.
std::string load_checkpoint_weights(const std::string& run_dir, const YAML::Node& config,
                                    const std::string& checkpoint, torch::nn::Module& model,
                                    const std::string& tokenizer_fingerprint) {
  // A folder `attnlab import` wrote, not yet fine-tuned: its own weights (pretrained.yaml and
  // config.yaml beside them, no checkpoints), so eval and sample work on the pretrained model.
  if ((checkpoint == "best" || checkpoint == "latest") && is_import_folder(run_dir) &&
      list_checkpoints(run_dir).empty()) {
    load_state_dict(model, read_weights(run_dir), /*strict=*/true);
    return run_dir;
  }
  const std::string path = choose_checkpoint(run_dir, checkpoint);
  TrainState recorded;
  const StateDict weights = read_checkpoint_model_state(path, &recorded);
  check_checkpoint_tokenizer(path, recorded.tokenizer, tokenizer_fingerprint);
  try {
    load_state_dict(model, weights, /*strict=*/true);
  } catch (const WeightMismatch& e) {
    std::string checkpoint_config;
    read_checkpoint_state(path, &checkpoint_config);
    const std::vector<std::string> changes = model_config_changes(checkpoint_config, config);
    const std::string file = write_mismatch_report(run_dir, path, changes, &e.report());
    const std::string config_path = (std::filesystem::path(run_dir) / "config.yaml").string();
    throw UserError("checkpoint '" + path + "' does not fit the model " +
                    (changes.empty()
                         ? "of " + config_path + ": " + e.report().headline()
                         : "that the overrides make (" + first_model_change(changes) +
                               "); the run's model comes from its config.yaml: drop the "
                               "overrides of model.* / attention.* that change it") +
                    (file.empty() ? "" : " (full report: " + file + ")"));
  }
  return path;
}

}  // namespace

LoadedRun load_run(const std::string& run_dir, const std::vector<std::string>& overrides,
                   const std::string& checkpoint) {
  LoadedRun run;
  run.config = std::make_shared<YAML::Node>(load_run_config(run_dir, overrides, run.device));
  const std::string task = task_name(*run.config);
  check_user(task == "lm", "run_dir=" + run_dir + " is a '" + task +
                               "' run: generating text needs a language-model run (task.name=lm); "
                               "`attnlab eval run_dir=" +
                               run_dir + "` evaluates it");
  run.tokenizer = std::shared_ptr<const Tokenizer>(load_tokenizer(*run.config));
  run.model = build_model(*run.config, run.tokenizer->vocab_size());
  apply_finetune(*run.config, *run.model);  // a LoRA run's adapters, as LmTask adds them
  run.checkpoint_path = load_checkpoint_weights(run_dir, *run.config, checkpoint, *run.model,
                                                run.tokenizer->fingerprint());
  run.model->to(run.device);
  run.model->eval();
  return run;
}

std::unique_ptr<LoadedTask> load_task(const std::string& run_dir,
                                      const std::vector<std::string>& overrides,
                                      const std::string& checkpoint) {
  auto run = std::make_unique<LoadedTask>();
  run->config = std::make_shared<YAML::Node>(load_run_config(run_dir, overrides, run->device));
  TaskContext context{*run->config, run->dist, run->device,
                      cfg::get<int64_t>(*run->config, "seed")};
  context.initial_weights = false;
  run->task = task_registry().get(task_name(*run->config))(context);
  torch::nn::Module& model = run->task->model();
  run->checkpoint_path = load_checkpoint_weights(run_dir, *run->config, checkpoint, model,
                                                 run->task->tokenizer_fingerprint());
  model.to(run->device);
  model.eval();
  return run;
}

}  // namespace attnlab
