// Weights from a path, whatever wrote them, and init_from:
//   * read_weights(path): a checkpoint file, a run dir (its latest checkpoint), a .pt written by
//     Python's torch.save(model.state_dict(), path) (zip or legacy format), a .safetensors file
//     or a folder `attnlab import` wrote (memory-mapped), or `hf:<folder>`, a Hugging Face
//     model folder (interop/hf/hf_model.h maps its names).
//   * init_from_config: `init_from=<path>` + `init_strict` applied to a model.
// Separate from weights_io.h (state dicts in and out) so that checkpoint.cpp, which uses
// weights_io, and this reader, which uses checkpoints, do not depend on each other.
#pragma once

#include <torch/torch.h>

#include <string>

#include "config/config_node.h"
#include "io/weights_io.h"

namespace attnlab {

StateDict read_weights(const std::string& path_or_run_dir);

// Loads `weights`, read from the init_from `source`, into `model`, strict or partial; a strict
// mismatch is a UserError naming the source, what did not fit and init_strict=false.
LoadReport load_init_weights(torch::nn::Module& model, const StateDict& weights,
                             const std::string& source, bool strict);

// Applies `init_from` (if set) to `model`; returns the report (empty when init_from is unset).
LoadReport init_from_config(torch::nn::Module& model, const ConfigNode& config);

}  // namespace attnlab
