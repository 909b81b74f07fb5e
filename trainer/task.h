// The task seam of the training loop, as fairseq's Task or torchtitan's TrainSpec: a task
// supplies the model, the training batches, the loss of one batch, validation and what the end
// of a run writes and prints. trainer/train_loop.cpp's train() does everything else the same way
// for every task: run directory, resume, stepping, gradient accumulation, data parallel
// (MPI / gloo / NCCL), bf16 autocast, the non-finite guard and spike detector, clipping, GradES,
// checkpoints, signals, evaluation cadence, logging and result.json.
//
// Tasks are registered by name (`task.name`) in tasks/task_registry.cpp:
//   lm              tasks/lm/lm_task.cpp: the GPT with an objective (autoregressive or
//                   masked_diffusion) on token shards; validation loss, perplexity, bits/byte.
//   classification  tasks/classification/classification_task.cpp: the encoder classifier on
//                   a labelled dataset; validation loss and metrics, the final model's test
//                   metrics and classification_metrics.{json,md}.
// Adding a task is one file pair and one registry line; the loop does not change.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/registry.h"
#include "config/config_node.h"
#include "config/option_schema.h"
#include "data/batch.h"
#include "distributed/distributed.h"
#include "losses/loss_set.h"
#include "trainer/checkpoint.h"

namespace attnlab {

class MetricsLogger;
class ProgressMeter;

// What a task is built from. The task keeps references: they outlive it.
struct TaskContext {
  const ConfigNode& config;  // the composed, resolved config
  DistributedContext& dist;  // rank and world size (1 when not distributed)
  torch::Device device;      // where the model will live (the task builds it on the CPU)
  int64_t seed = 0;
  // Apply init_from to the new model. False when the weights come from a checkpoint right after
  // (`attnlab eval` on a run): the run's init_from source need not exist any more.
  bool initial_weights = true;
};

// One evaluation. The defaults are the training loop's validation (the task's fixed validation
// batches); `attnlab eval` asks for others (eval_plan).
struct EvalSpec {
  std::string split = "val";  // a held-out split the task has ("val"; classification: "test")
  int64_t seq_len = 0;        // 0: the training length (data.seq_len)
  int64_t batches = 0;        // 0: the loop's validation batches
  int64_t batch_size = 0;     // 0: data.batch_size
  int64_t t_samples = 1;      // draws of the objective's noise per window (masked diffusion)
  ProgressMeter* progress = nullptr;  // advanced by one per batch, when given

  bool is_loop_validation() const {
    return split == "val" && seq_len == 0 && batches == 0 && batch_size == 0 && t_samples == 1;
  }
};

// `attnlab eval`'s eval.* options, read by the command.
// The `eval:` group of `attnlab eval` (configs/config.yaml holds the same defaults; a test keeps
// them equal). Plain fields: tasks read options.batches.
struct EvalOptions {
  std::vector<int64_t> seq_lens;  // empty: the training length
  int64_t batches = 20;
  int64_t batch_size = 0;  // 0: data.batch_size
  int64_t t_samples = 4;

  template <class V>
  void visit(V& v) {
    v("seq_lens", seq_lens, "validation lengths; empty: the training length", config::at_least(1));
    v("batches", batches, "batches per length", config::at_least(1));
    v("batch_size", batch_size, "0: data.batch_size", config::at_least(0));
    v("t_samples", t_samples,
      "objective=masked_diffusion: (t, mask) draws per window of the NELBO estimate",
      config::at_least(1));
  }
};

// What `attnlab eval` runs for a task: its evaluations, the line above the table and the fields
// of eval.json beside "results".
struct EvalPlan {
  std::vector<EvalSpec> specs;
  std::string title;
  nlohmann::json header = nlohmann::json::object();
};

// One validation pass.
struct TaskEvaluation {
  double loss = 0.0;                      // what best.ckpt minimises (TrainState::best_val_loss)
  std::map<std::string, double> metrics;  // logged at the step as they are ("val/loss", ...)
  std::string line;                       // for the progress display: "val loss 3.21 ppl 24.8"
  // `attnlab eval`: this evaluation's row of the table and of eval.json (columns in order; the
  // objective's own reading for an LM, e.g. the diffusion bound), and text printed below it.
  std::vector<std::pair<std::string, nlohmann::json>> row;
  std::string details;
};

// The numbers of a run that cmd_train prints and result.json holds.
struct TrainSummary {
  std::string task;  // task.name
  std::string run_dir;
  int64_t step = 0;         // optimizer steps completed
  double train_loss = 0.0;  // last step's total loss
  double val_loss = 0.0;    // last evaluation (nats/token of the objective's main term)
  // The last validation's metrics as they were logged ("val/loss", and the task's own, e.g. an
  // LM's "val/perplexity"); the task turns those it reports into `results` in finish().
  std::map<std::string, double> val_metrics;
  double tokens_per_second = 0.0;        // mean over the steps run by this process
  double examples_per_second = 0.0;      // sequences (rows) per second, likewise
  int64_t parameters = 0;                // every parameter of the model (a tied head counted once)
  int64_t non_embedding_parameters = 0;  // without the token and position embeddings
  // The task's own numbers (e.g. "test/macro_f1"), written to result.json beside the above.
  std::map<std::string, double> results;
  std::string report;             // what `attnlab train` prints at the end (the task's report)
  bool interrupted = false;       // stopped by a signal (or trainer.halt_at_step) before max_steps
  int stop_signal = 0;            // SIGINT, SIGTERM or SIGHUP when one stopped this process
  bool already_finished = false;  // the run had finished before: its result.json, nothing run
};

class Task {
 public:
  virtual ~Task() = default;

  // The module that is trained, checkpointed and all-reduced (built on the CPU, with init_from
  // applied; the loop moves it to the device and broadcasts rank 0's weights).
  virtual torch::nn::Module& model() = 0;
  // Parameter counts for the log and result.json: all, and those of the embeddings.
  virtual int64_t embedding_parameters() const = 0;
  // Model FLOPs per trained token (for MFU); 0 when unknown.
  virtual double flops_per_token() const = 0;
  // The tokenizer's fingerprint: a checkpoint of another tokenizer is refused on resume.
  virtual std::string tokenizer_fingerprint() const = 0;

  // This rank's next training batch (on the CPU), and how many tokens it trains.
  virtual Batch next_batch() = 0;
  virtual int64_t tokens_in(const Batch& batch) const = 0;
  // The training loss of `batch` (already on the device): total and logged terms ("loss/ce",
  // "aux/...", "stat/..."), as LossSet::compute returns them.
  virtual LossResult training_loss(const Batch& batch) = 0;
  // An evaluation (every rank calls it; results agree). EvalSpec{} is the loop's validation pass
  // over the task's fixed batches. UserError when the split is too small for the spec.
  virtual TaskEvaluation evaluate(const EvalSpec& spec) = 0;
  // The evaluations `attnlab eval` runs from its eval.* options.
  virtual EvalPlan eval_plan(const EvalOptions& options) const = 0;

  // The task's position and RNG streams, in the checkpoint (sampler_state and extra entries).
  // save_state is collective when distributed (ranks may exchange their streams).
  virtual void save_state(TrainState& state) = 0;
  virtual void load_state(const TrainState& state) = 0;

  // After the last step of a run that was not interrupted (rank 0 writes, every rank calls):
  // fills summary.results with the task's numbers and may write its own files and log records.
  // The loop's last evaluate() ran on the same, final weights.
  virtual void finish(TrainSummary& summary, MetricsLogger* metrics) {
    (void)summary, (void)metrics;
  }
  // What `attnlab train` prints for a finished run (summary.report).
  virtual std::string report(const TrainSummary& summary) const = 0;
};

using TaskFactory = std::function<std::unique_ptr<Task>(const TaskContext& context)>;
Registry<TaskFactory>& task_registry();

// The task a composed config selects: task.name (default "lm"); UserError naming the key and the
// registered tasks for another name.
std::string task_name(const ConfigNode& config);

}  // namespace attnlab
