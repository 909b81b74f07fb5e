// The safetensors format (Hugging Face's weight files), read memory-mapped and written streamed,
// so a model passes through attnlab without being held in memory twice.
//
// A file is: an 8-byte little-endian header length N, N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [a, b], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"format": "pt"}}
// (padded with spaces to a multiple of 8), then the raw little-endian tensor bytes; offsets count
// from the end of the header. A folder holds one `model.safetensors` or shards named by
// `model.safetensors.index.json` ({"weight_map": {"<name>": "<shard file>"}}).
//
// Reading checks everything before a byte of tensor data is used: the header length against the
// file size, the JSON, every dtype, shape and offset range (in the data, sized as shape x dtype,
// no overlaps), and the metadata. Each failure is one UserError naming the file and what was
// expected. Tensors come back as zero-copy CPU views of a private (copy-on-write) mapping that
// stays alive as long as any view does.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "modules/state_dict.h"

namespace attnlab {

struct SafetensorsEntry {
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return path_; }
  // Tensor names in data order.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  // A CPU view of the mapped bytes (a copy only when the data is not aligned for its dtype).
  torch::Tensor tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  const char* data_ = nullptr;  // start of the data section
  std::vector<std::string> names_;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// One file, or a folder with model.safetensors or an index of shards.
class SafetensorsSet {
 public:
  // `path`: a .safetensors file or a folder. UserError naming the folder when it has neither
  // model.safetensors nor model.safetensors.index.json, or when the index is inconsistent.
  explicit SafetensorsSet(const std::string& path);
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return owner_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  torch::Tensor tensor(const std::string& name) const;
  // The file that holds `name` (for messages).
  const std::string& file_of(const std::string& name) const;
  // Metadata of the first file.
  const std::map<std::string, std::string>& metadata() const { return files_.front()->metadata(); }

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> owner_;
};

// True when `path` is a .safetensors file or a folder holding model.safetensors(.index.json).
bool has_safetensors(const std::string& path);

// Drops the pages of a tensor that is a view of a mapped safetensors file from this process's
// memory (they are read again from the file if touched); a no-op for any other tensor. Loading
// calls it after each copy, so peak memory stays near one copy of the model.
void release_mapped_pages(const torch::Tensor& tensor);

// Writes `tensors` (in order, each as its own dtype or converted to `dtype`, from the CPU) to
// `path` atomically: a `.tmp` file streamed tensor by tensor (one converted tensor in memory at a
// time), fsynced and renamed. UserError naming the path on I/O failure; names must be unique.
void write_safetensors(const std::string& path, const NamedTensorList& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}},
                       std::optional<torch::ScalarType> dtype = std::nullopt);

// Writes `tensors` into `folder` as model.safetensors, or, when they exceed max_shard_bytes, as
// model-0000k-of-0000n.safetensors shards plus model.safetensors.index.json (transformers'
// layout). Returns the files written.
std::vector<std::string> write_safetensors_folder(
    const std::string& folder, const NamedTensorList& tensors, uint64_t max_shard_bytes,
    std::optional<torch::ScalarType> dtype = std::nullopt);

// "F32" <-> torch::kFloat32 ...; UserError for a dtype attnlab does not read.
torch::ScalarType safetensors_dtype(const std::string& name, const std::string& where);
std::string safetensors_dtype_name(torch::ScalarType dtype);

}  // namespace attnlab
