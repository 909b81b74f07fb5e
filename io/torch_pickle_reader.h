// Reads a file written by Python's `torch.save(state_dict, path)` into a name -> tensor map, for
// init_from / interop. LibTorch's own torch::pickle_load still cannot do this in 2.11 (checked
// when moving off 1.13): its unpickler maps collections.OrderedDict, the type of every
// state_dict, to None, and it rejects the legacy (non-zip) format. So we run a small pickle VM of
// our own that understands exactly what torch.save emits for a dict of tensors:
// both the default zip format and the legacy `_use_new_zipfile_serialization=False` format, pickle
// protocols 2-4, tensors rebuilt by torch._utils._rebuild_tensor_v2 / _rebuild_parameter over
// typed storages (Float, Double, Half, BFloat16, Long, Int, Short, Char, Byte, Bool).
// Anything else (arbitrary Python objects) is a UserError naming the file and the object.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

namespace attnlab {

// The (possibly nested: {"model": {...}} or {"state_dict": {...}}) dict of tensors in a torch.save
// file, flattened with '.'-joined keys. UserError naming `path` when it is not such a file.
std::map<std::string, torch::Tensor> read_torch_save_file(const std::string& path);

}  // namespace attnlab
