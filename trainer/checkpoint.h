// Training checkpoints: everything needed for a bit-exact resume in one file per step,
//   <run_dir>/checkpoints/step_<8 digits>.ckpt
// holding a torch::serialize archive with sub-archives "model" (state_dict by dotted name),
// "optimizer" (AdamW state incl. exp_avg/exp_avg_sq/step), "rng" (CPU and every CUDA generator)
// and "meta" (TrainState, resolved config YAML), followed by a 24-byte trailer (magic, archive
// size, CRC32) so truncation or corruption is detected before anything is loaded.
//
// Crash safety: the file is written as `.tmp`, fsynced, renamed, the directory fsynced; only then
// is `checkpoints/latest` (a one-line pointer) replaced the same way. A crash at any point leaves
// the previous checkpoint and pointer valid.
//
// Loading checks the trailer (magic, size) before reading the file and the CRC, the zip structure
// (every local header against the central directory, each record's data against its CRC32) and
// every archive record's size before parsing. The meta section records an XXH64 hash of every
// model and optimizer tensor ("tensor_hashes", "optimizer_hashes"); a tensor whose bytes differ
// at load is named in the error (checkpoints written before the hashes load unchecked). Any
// failure while parsing or applying the archive
// (c10::Error, bad_alloc, ...) into a UserError naming the file, so resume falls back to the
// previous checkpoint whatever is wrong with the newer one. A checkpoint records the tokenizer's
// fingerprint; resuming or evaluating it with a different tokenizer is an error.
// `checkpoints/best.ckpt` is a hard link (or copy) of the lowest-val-loss checkpoint. keep_last K
// deletes older step files, never the one `latest` names nor the one `best.ckpt` is.
//
// No checkpoint with a NaN/Inf tensor is ever written: save_checkpoint scans the model and the
// optimizer moments first and refuses (UserError naming the tensor) without touching the files.
// So `latest`, the newest step file, is always finite, and keep_last never deletes the newest
// finite checkpoint.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "config/config_node.h"
#include "io/weights_io.h"

namespace attnlab {

struct TrainState {
  int64_t step = 0;  // optimizer updates completed
  double best_val_loss = std::numeric_limits<double>::infinity();
  int64_t tokens_seen = 0;
  std::string sampler_state;                 // the data sampler's serialised position/RNG
  std::string scheduler;                     // LrSchedule::describe(), for provenance
  std::map<std::string, std::string> extra;  // caller's RNG states etc. (e.g. "objective_rng")
  // The tokenizer's fingerprint (Tokenizer::fingerprint()); empty when unknown (older
  // checkpoints). Set it before load_checkpoint/resume to require a match.
  std::string tokenizer;
};

// The checkpoint was written with another tokenizer: not a damaged file, so resume does not fall
// back to an older checkpoint (they share the tokenizer) but stops with this error.
class TokenizerMismatch : public UserError {
 public:
  using UserError::UserError;
};

// A checkpoint whose optimizer state belongs to another optimizer (optim.name) than the resuming
// run's: every checkpoint of the run has it, so resuming refuses instead of trying older ones.
class OptimizerMismatch : public UserError {
 public:
  using UserError::UserError;
};

// TokenizerMismatch when both fingerprints are known and differ.
void check_checkpoint_tokenizer(const std::string& path, const std::string& recorded,
                                const std::string& current);

// The checkpoint's tensors do not fit the model (another architecture): not a damaged file, so
// resume does not fall back to an older checkpoint either. Carries the checkpoint's own config
// (to name the settings that changed) and the load report (for the full list).
class CheckpointMismatch : public UserError {
 public:
  CheckpointMismatch(std::string path, std::string config_yaml, LoadReport report);
  const std::string& path() const { return path_; }
  const std::string& config_yaml() const { return config_yaml_; }
  const LoadReport& report() const { return report_; }

 private:
  std::string path_, config_yaml_;
  LoadReport report_;
};

// The model.* and attention.* settings that differ between a checkpoint's config (its YAML
// text) and `config`, as "model.d_model: 64 -> 32"; keys that only one of them has are skipped
// (older checkpoints lack newer keys), and so is attention.sparse_compute (an exact compute
// path, not a different model).
std::vector<std::string> model_config_changes(const std::string& checkpoint_config_yaml,
                                              const ConfigNode& config);

// "model.d_model: 64 -> 32" or "model.d_model: 64 -> 32, and 2 more": the first change of
// model_config_changes() for a one-line message.
std::string first_model_change(const std::vector<std::string>& changes);

// Writes what does not fit, in full (the changed settings and every tensor of `report`, when
// given), to <run_dir>/weight_mismatch.txt; returns its path, or "" when it cannot be written.
std::string write_mismatch_report(const std::string& run_dir, const std::string& checkpoint,
                                  const std::vector<std::string>& changes,
                                  const LoadReport* report);

struct SaveOptions {
  int64_t keep_last = 0;     // 0 = keep every checkpoint
  bool is_best = false;      // this checkpoint becomes checkpoints/best.ckpt
  bool save_rng = true;      // torch CPU (+ CUDA) generator states
  bool check_finite = true;  // refuse non-finite tensors (false: tests that need a bad file)
};

struct LoadedCheckpoint {
  std::string path;
  std::string config_yaml;
};

// Writes the checkpoint for state.step; returns its path. The optimizer may be null. UserError,
// with nothing written, when a model or optimizer tensor is not finite.
std::string save_checkpoint(const std::string& run_dir, const torch::nn::Module& model,
                            const torch::optim::Optimizer* optimizer, const TrainState& state,
                            const std::string& config_yaml, const SaveOptions& options = {});

// Loads a checkpoint (a file, or a run dir / checkpoints dir via resolve_checkpoint) into model
// (strict), optimizer and state (either may be null) and restores the RNG states when
// `restore_rng`. UserError naming the file when it is truncated, corrupted or does not fit the
// model/optimizer (or is damaged in any other way). When `state` holds a tokenizer fingerprint,
// a checkpoint recording another one is a TokenizerMismatch.
LoadedCheckpoint load_checkpoint(const std::string& path_or_dir, torch::nn::Module& model,
                                 torch::optim::Optimizer* optimizer, TrainState* state,
                                 bool restore_rng = true);

// run.resume=auto: loads the newest valid checkpoint of run_dir (`latest` first, then older step
// files, warning on stderr about each one skipped for any load failure). nullopt when there is
// none; UserError when checkpoints exist but none is loadable; TokenizerMismatch at once.
std::optional<LoadedCheckpoint> resume_latest(const std::string& run_dir, torch::nn::Module& model,
                                              torch::optim::Optimizer* optimizer,
                                              TrainState* state);

// What a trainer does with `run.resume` (auto | never | must): validates the value, and for
// auto/must loads the latest checkpoint with resume_latest. UserError for a bad value, or for
// must when the run dir has no checkpoint. A checkpoint made with other model.* / attention.*
// settings than `config` (whether or not its tensors would fit: n_heads does not change a
// shape) is a one-line UserError naming the first changed setting, with the full report in
// <run_dir>/weight_mismatch.txt; the model may then hold the checkpoint's weights, so the caller
// must not go on.
std::optional<LoadedCheckpoint> resume_per_config(const ConfigNode& config,
                                                  const std::string& run_dir,
                                                  torch::nn::Module& model,
                                                  torch::optim::Optimizer* optimizer,
                                                  TrainState* state);

// What resume_per_config would do with `config` in `run_dir`, found without loading weights or
// writing anything (`attnlab train --dry-run`): nullopt when it would start a new run
// (run.resume=never, or no checkpoint), else the checkpoint it would resume from (the newest
// whose metadata reads) and its state. The UserErrors are resume_per_config's own, word for word
// up to the mismatch report it would write: run.resume=must without a checkpoint, or a
// checkpoint made with other model.* / attention.* settings.
struct ResumePlan {
  std::string checkpoint;
  TrainState state;
};
std::optional<ResumePlan> plan_resume(const ConfigNode& config, const std::string& run_dir);

// A checkpoint file path from a file, a checkpoints/ dir or a run dir (via `latest`, else the
// highest step, with a warning line when `latest` names a file that is gone). UserError when
// nothing is found.
std::string resolve_checkpoint(const std::string& path);

// Step files of a run dir, newest first.
std::vector<std::string> list_checkpoints(const std::string& run_dir);

bool is_checkpoint_file(const std::string& path);

// The model state_dict stored in a checkpoint (for init_from / export), without a model; with
// `state`, also its metadata. UserError naming the file for any damage.
std::map<std::string, torch::Tensor> read_checkpoint_model_state(const std::string& path,
                                                                 TrainState* state = nullptr);

// Metadata only (step, best val loss, ... and config YAML) of a checkpoint.
TrainState read_checkpoint_state(const std::string& path, std::string* config_yaml = nullptr);

std::string checkpoint_dir(const std::string& run_dir);

}  // namespace attnlab
