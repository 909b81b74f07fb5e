// Model weights in and out, and PyTorch interop:
//   * state_dict(model): parameters + buffers by their dotted names (the keys Python uses).
//   * load_state_dict(model, weights, strict): strict fails (WeightMismatch, nothing loaded) on any
//     missing/unexpected key or shape mismatch; non-strict loads the matching tensors and reports
//     the rest (dtype differences are converted, as torch does).
//   * save_weights_file / torch_save_bytes: a name -> tensor dict in torch.save's zip format that
//     Python's torch.load reads as a plain dict, including PyTorch >= 2.6's default
//     torch.load(weights_only=True) (used by `attnlab export` and the probe files).
// Reading weights from a path (checkpoint, run dir, .pt, safetensors, Hugging Face folder) and
// init_from are in weight_sources.h, above checkpoint.h, which uses this file's LoadReport.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "modules/state_dict.h"

namespace attnlab {

struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> missing;     // in the model, not in the weights
  std::vector<std::string> unexpected;  // in the weights, not in the model
  std::vector<std::string> mismatched;  // "name: weights [a, b] vs model [c, d]"
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  // Multi-line human summary (counts + up to 10 names per category).
  std::string summary() const;
  // One line: "18 of 18 tensors do not fit (18 shape mismatches; first: blocks.0.attn.q_proj
  // .weight: weights [64, 64] vs model [32, 32])".
  std::string headline() const;
  // Every name of every category, one per line (for a report file).
  std::string full_list() const;
};

// A strict load that failed: nothing was loaded; report() says what did not fit.
class WeightMismatch : public UserError {
 public:
  explicit WeightMismatch(LoadReport report);
  const LoadReport& report() const { return report_; }

 private:
  LoadReport report_;
};

StateDict state_dict(const torch::nn::Module& model);

// Which of `weights` fit the tensors named and shaped by `expected` (a model's state_dict shapes):
// the report load_state_dict acts on, also for checks that do not build the model.
LoadReport match_shapes(const std::map<std::string, std::vector<int64_t>>& expected,
                        const StateDict& weights);

LoadReport load_state_dict(torch::nn::Module& model, const StateDict& weights, bool strict);

// Writes `weights` (moved to CPU) atomically as a torch.load-able dict.
// The bytes of torch.save(dict): a zip with data.pkl (a plain dict of tensors, no TorchScript
// type tags: torch::pickle_save's tags are rejected by torch.load's weights_only mode) and one
// record per tensor. Tensors are written from the CPU.
std::vector<char> torch_save_bytes(const StateDict& weights);

void save_weights_file(const std::string& path, const StateDict& weights);

}  // namespace attnlab
