// The training loop behind `attnlab train`: composes data, tokenizer, model, objective, losses,
// optimizer and schedule from the resolved config; resumes bitwise-exactly from the run dir's
// latest checkpoint (`run.resume=auto`); data-parallel over MPI when launched by mpirun/srun;
// evaluates, logs, checkpoints atomically and stops cleanly on SIGINT/SIGTERM/SIGHUP/SIGUSR1.
//
// Run-directory safety: the run dir is locked (config::RunDirectoryLock) for the whole run, and
// config.yaml, overrides.yaml, command.txt and git.txt are written only after everything was
// validated, the existing checkpoint included, so a command that fails leaves the run as it was.
// Divergence: trainer.on_nonfinite (halt | skip | rollback) and the spike detector, see
// nonfinite_guard.h; a non-finite step never reaches a checkpoint.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace attnlab {

struct TrainSummary {
  std::string run_dir;
  int64_t step = 0;         // optimizer steps completed
  double train_loss = 0.0;  // last step's total loss
  double val_loss = 0.0;    // last evaluation (nats/token of the objective's main term)
  double val_perplexity = 0.0;
  double val_bits_per_byte = 0.0;
  double tokens_per_second = 0.0;        // mean over the steps run by this process
  int64_t parameters = 0;                // every parameter of the model (a tied head counted once)
  int64_t non_embedding_parameters = 0;  // without the token and position embeddings
  bool interrupted = false;              // stopped by a signal before max_steps
  int stop_signal = 0;                   // SIGINT, SIGTERM or SIGHUP when one stopped this process
  bool already_finished = false;  // the run had finished before: its result.json, nothing run
};

// The exit code of `attnlab train` after a signal stop: 128 + 2 (SIGINT) = 130, or 143 for
// SIGTERM and SIGHUP; 0 when no such signal stopped the run.
int exit_code_for(const TrainSummary& summary);

// `config` is the composed, resolved config; `overrides`/`argv` are recorded in the run dir.
TrainSummary train(const YAML::Node& config, const std::vector<std::string>& overrides,
                   const std::vector<std::string>& argv);

}  // namespace attnlab
