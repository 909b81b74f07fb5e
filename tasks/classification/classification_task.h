// The `classification` task (`attnlab train task=classification`): fine-tunes or trains the
// encoder classifier (modules/sequence_classifier.h) on a labelled dataset
// (data/corpora/labelled_dataset.h) in the one training loop (trainer/train_loop.cpp), so it has
// every part the LM task has: data parallel, bf16 autocast, the non-finite guard, GradES, optimizer
// groups and freezing, the LR schedule, clipping, atomic checkpoints with exact resume (model,
// optimizer, RNG, sampler position), metrics and init_from (an LM run's weights load into the
// encoder). The LossSet is `loss.terms`; focal `alpha: auto` gets the training split's class
// counts.
//
// Validation (every trainer.eval_every steps and at the end) runs on the fixed validation split
// (val/loss, val/accuracy, val/macro_f1, per-class recall in metrics.jsonl; best.ckpt = lowest
// val loss). At the end the FINAL model is evaluated on val and test and the run dir gets
//   classification_metrics.json  {"step", "val": {...}, "test": {...}} (metrics_to_json)
//   classification_metrics.md    per-class precision/recall/F1 and confusion matrices
//   result.json                  flat numbers (test/macro_f1, test/recall/hard_ham, ...) that
//                                `attnlab summarize` aggregates over a sweep.
// Data parallel: each rank trains its slice of every global batch (ExampleSampler); every rank
// evaluates the whole (small) validation and test splits, so they agree without a collective.
#pragma once

#include <torch/arg.h>

#include <memory>
#include <string>

#include "trainer/task.h"

namespace attnlab {

// The `task:` group of task=classification (configs/task/classification.yaml holds the same
// defaults; a test keeps them equal).
struct ClassificationTaskOptions {
  TORCH_ARG(std::string, pooling) = "cls";
  TORCH_ARG(int64_t, eval_batch_size) = 64;

 public:
  template <class V>
  void visit(V& v) {
    v("pooling", pooling(), "cls (the state at the prepended BOS) | mean (over non-padding tokens)",
      config::one_of({"cls", "mean"}));
    v("eval_batch_size", eval_batch_size(), "examples per validation/test batch",
      config::at_least(1));
  }
};

// Binds the task group of a classification run (strict). Defined for YAML::Node.
template <class ConfigTree>
ClassificationTaskOptions classification_task_options(const ConfigTree& config);

std::unique_ptr<Task> make_classification_task(const TaskContext& context);

}  // namespace attnlab
