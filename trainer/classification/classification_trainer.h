// `attnlab train task=classification`: fine-tunes/trains the encoder classifier
// (modules/sequence_classifier.h) on a labelled dataset (data/labelled_dataset.h) with the
// trainer's own parts: run directory, AdamW groups + freezing, LR schedule, gradient clipping,
// LossSet (loss.terms; focal `alpha: auto` gets the training split's class counts), atomic
// checkpoints with exact resume (model, optimizer, RNG, sampler position), metrics.jsonl/csv,
// progress display and init_from (an LM run's weights load into the encoder).
//
// Evaluation (every trainer.eval_every steps and at the end) runs on the fixed validation split
// (val/loss, val/accuracy, val/macro_f1, per-class recall in metrics.jsonl; best.ckpt = lowest
// val loss). At the end the FINAL model is evaluated on val and test and the run dir gets
//   classification_metrics.json  {"step", "val": {...}, "test": {...}} (metrics_to_json)
//   classification_metrics.md    per-class precision/recall/F1 and confusion matrices
//   result.json                  flat numbers (test/macro_f1, test/recall/hard_ham, ...) that
//                                `attnlab summarize` aggregates over a sweep.
// Single process only (no MPI data parallelism).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "trainer/classification/classification_metrics.h"

namespace attnlab {

struct ClassificationSummary {
  std::string run_dir;
  int64_t step = 0;
  double train_loss = 0.0;
  double val_loss = 0.0, test_loss = 0.0;
  ClassificationMetrics val, test;
  double examples_per_second = 0.0;
  bool interrupted = false;
};

// The task a composed config selects: task.name (default "lm").
std::string task_name(const YAML::Node& config);

// What `attnlab train` prints at the end: the stop notice for an interrupted run, else the test
// table (metrics_to_markdown) and a one-line summary with the run dir.
std::string classification_report(const ClassificationSummary& summary);

ClassificationSummary train_classification(const YAML::Node& config,
                                           const std::vector<std::string>& overrides,
                                           const std::vector<std::string>& argv);

}  // namespace attnlab
