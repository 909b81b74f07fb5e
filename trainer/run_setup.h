// Pieces every command that builds a model shares (train, eval, sample, export, probe): device
// and thread selection from `trainer.*`, and model construction from the composed config.
#pragma once

#include <torch/torch.h>

#include "common/cpu_cores.h"
#include "config/config_node.h"
#include "modules/gpt.h"
#include "trainer/trainer_options.h"

namespace attnlab {

// `trainer.device` (cpu | cuda | cuda:N | auto; see cuda_device.h's resolve_device), made the
// current device; also checks trainer.autocast_bf16 against the GPU and applies
// trainer.deterministic. UserError when the device cannot be used.
torch::Device device_from_config(const ConfigNode& config);
torch::Device device_from_config(const TrainerOptions& options);

// `trainer.threads` (0 = all cores) for intra-op parallelism; returns the count in use. A count
// above available_cores() is clamped to it with a one-line warning on stderr.
int configure_threads(const ConfigNode& config);
int configure_threads(const RuntimeOptions& options);

// `batch` with every defined tensor (input, target, loss_mask, key_padding, labels) on `device`.
Batch batch_to_device(Batch batch, const torch::Device& device);

// Builds model=gpt from model.* / attention.* for a tokenizer of `vocab_size` ids, seeded by
// `seed` so every rank and every resume builds identical initial weights.
Gpt build_model(const ConfigNode& config, int64_t vocab_size);

}  // namespace attnlab

#include <memory>
#include <string>
#include <vector>

#include "data/tokenizers/tokenizer.h"
#include "distributed/distributed.h"
#include "trainer/task.h"

namespace attnlab {

// A finished (or running) run, reloaded for eval/sample: its saved config.yaml with `overrides`
// applied, its tokenizer and the model with the weights of `checkpoint` (best | latest | a path).
struct LoadedRun {
  std::shared_ptr<ConfigNode> config;  // the saved config with the overrides applied
  std::shared_ptr<const Tokenizer> tokenizer;
  Gpt model{nullptr};
  torch::Device device{torch::kCPU};
  std::string checkpoint_path;
};

// The checkpoint `eval`, `sample` and `export` use (their `checkpoint=` option): "best" (the
// run's best.ckpt, else its latest), "latest", or a checkpoint file or run directory path.
std::string choose_checkpoint(const std::string& run_dir, const std::string& which);

LoadedRun load_run(const std::string& run_dir, const std::vector<std::string>& overrides,
                   const std::string& checkpoint = "best");

// A run reloaded as its task (task.name of its config: lm, classification, ...), for the
// commands every task serves (`attnlab eval`): the saved config with `overrides`, a single-process
// context, and the task with the weights of `checkpoint` in its model, on the run's device, in
// eval mode. init_from is not applied again: the weights come from the checkpoint.
struct LoadedTask {
  std::shared_ptr<ConfigNode> config;  // the saved config with the overrides applied
  DistributedContext dist;             // one process
  torch::Device device{torch::kCPU};
  std::string checkpoint_path;
  std::unique_ptr<Task> task;
};

std::unique_ptr<LoadedTask> load_task(const std::string& run_dir,
                                      const std::vector<std::string>& overrides,
                                      const std::string& checkpoint = "best");

}  // namespace attnlab
