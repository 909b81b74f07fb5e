// The two ways attnlab passes named tensors around, named once for every layer above modules/:
// a state dict (name -> tensor, sorted by name: what weights files, checkpoints and conversions
// hold) and an ordered list of named tensors (what is written in a chosen order, or scanned).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace attnlab {

using StateDict = std::map<std::string, torch::Tensor>;
using NamedTensorList = std::vector<std::pair<std::string, torch::Tensor>>;

}  // namespace attnlab
