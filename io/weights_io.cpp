// Implementation of weights_io.h. Loading copies under NoGradGuard into the existing parameter
// tensors, so parameters keep their identity (optimizer references and tied weights stay valid).
#include "io/weights_io.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "common/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace attnlab {
namespace {

std::string shape(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

void append_list(std::ostringstream& os, const char* title, const std::vector<std::string>& names) {
  if (names.empty()) return;
  os << "\n  " << title << " (" << names.size() << "):";
  for (size_t i = 0; i < names.size() && i < 10; ++i) os << "\n    " << names[i];
  if (names.size() > 10) os << "\n    ...";
}

}  // namespace

std::string LoadReport::summary() const {
  std::ostringstream os;
  os << "loaded " << loaded.size() << " tensors; " << missing.size() << " missing, "
     << unexpected.size() << " unexpected, " << mismatched.size() << " shape mismatches";
  append_list(os, "missing (kept at init)", missing);
  append_list(os, "unexpected (ignored)", unexpected);
  append_list(os, "shape mismatch (kept at init)", mismatched);
  return os.str();
}

std::string LoadReport::headline() const {
  const size_t bad = missing.size() + unexpected.size() + mismatched.size();
  std::ostringstream os;
  os << bad << " of " << loaded.size() + missing.size() + mismatched.size() + unexpected.size()
     << " tensors do not fit (";
  const char* separator = "";
  for (const auto& [count, what] : {std::pair{mismatched.size(), "shape mismatches"},
                                    std::pair{missing.size(), "missing from the weights"},
                                    std::pair{unexpected.size(), "not in the model"}}) {
    if (count == 0) continue;
    os << separator << count << " " << what;
    separator = ", ";
  }
  const std::string& first = !mismatched.empty()   ? mismatched.front()
                             : !missing.empty()    ? missing.front() + " (missing)"
                             : !unexpected.empty() ? unexpected.front() + " (not in the model)"
                                                   : std::string();
  if (!first.empty()) os << "; first: " << first;
  os << ")";
  return os.str();
}

std::string LoadReport::full_list() const {
  std::ostringstream os;
  for (const auto& [title, names] :
       {std::pair{"shape mismatch (weights vs model)", &mismatched},
        std::pair{"in the model, missing from the weights", &missing},
        std::pair{"in the weights, not in the model", &unexpected}, std::pair{"loaded", &loaded}}) {
    os << title << " (" << names->size() << "):\n";
    for (const auto& name : *names) os << "  " << name << "\n";
  }
  return os.str();
}

WeightMismatch::WeightMismatch(LoadReport report)
    : UserError("the weights do not fit the model: " + report.headline()),
      report_(std::move(report)) {}

StateDict state_dict(const torch::nn::Module& model) {
  StateDict out;
  for (const auto& item : model.named_parameters(true)) out[item.key()] = item.value();
  for (const auto& item : model.named_buffers(true)) out[item.key()] = item.value();
  return out;
}

LoadReport match_shapes(const std::map<std::string, std::vector<int64_t>>& expected,
                        const StateDict& weights) {
  LoadReport report;
  for (const auto& [name, target] : expected) {
    auto it = weights.find(name);
    if (it == weights.end()) {
      report.missing.push_back(name);
    } else if (it->second.sizes() != c10::IntArrayRef(target)) {
      report.mismatched.push_back(name + ": weights " + shape(it->second) + " vs model " +
                                  c10::str(c10::IntArrayRef(target)));
    } else {
      report.loaded.push_back(name);
    }
  }
  for (const auto& item : weights)
    if (!expected.count(item.first)) report.unexpected.push_back(item.first);
  return report;
}

LoadReport load_state_dict(torch::nn::Module& model, const StateDict& weights, bool strict) {
  StateDict targets = state_dict(model);
  std::map<std::string, std::vector<int64_t>> expected;
  for (const auto& [name, target] : targets) expected[name] = target.sizes().vec();
  LoadReport report = match_shapes(expected, weights);
  if (strict && !report.complete()) throw WeightMismatch(report);
  torch::NoGradGuard no_grad;
  for (const auto& name : report.loaded) {
    targets.at(name).copy_(weights.at(name));
    release_mapped_pages(weights.at(name));  // a mapped file's pages: not kept twice
  }
  return report;
}

std::vector<char> torch_save_bytes(const StateDict& weights) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : weights) dict.insert(name, tensor.detach().to(torch::kCPU));
  std::vector<char> pickle;
  torch::jit::Pickler pickler(
      [&](const char* bytes, size_t size) { pickle.insert(pickle.end(), bytes, bytes + size); },
      /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
      /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(c10::IValue(dict));
  pickler.stop();
  std::vector<char> archive;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* bytes, size_t size) {
    const char* begin = static_cast<const char*>(bytes);
    archive.insert(archive.end(), begin, begin + size);
    return size;
  });
  torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(),
                                     writer);
  const std::string byte_order = "little";  // what torch.save records on x86-64 / arm64
  writer.writeRecord("byteorder", byte_order.data(), byte_order.size());
  writer.writeEndOfFile();
  return archive;
}

void save_weights_file(const std::string& path, const StateDict& weights) {
  const std::vector<char> bytes = torch_save_bytes(weights);
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
}

}  // namespace attnlab
