// safetensors reading (mmap) and writing (streamed); see safetensors.h.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "io/atomic_file.h"

namespace attnlab {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit (100 MB)

// Live mappings, so release_mapped_pages can tell a mapped view from ordinary memory.
std::mutex& mappings_mutex() {
  static std::mutex m;
  return m;
}
std::map<uintptr_t, uintptr_t>& live_mappings() {
  static std::map<uintptr_t, uintptr_t> m;
  return m;
}

int64_t element_size(torch::ScalarType dtype) {
  return static_cast<int64_t>(c10::elementSize(dtype));
}

}  // namespace

torch::ScalarType safetensors_dtype(const std::string& name, const std::string& where) {
  static const std::map<std::string, torch::ScalarType> table = {
      {"F64", torch::kFloat64},   {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
      {"BF16", torch::kBFloat16}, {"I64", torch::kInt64},   {"I32", torch::kInt32},
      {"I16", torch::kInt16},     {"I8", torch::kInt8},     {"U8", torch::kUInt8},
      {"BOOL", torch::kBool}};
  auto it = table.find(name);
  if (it == table.end())
    throw UserError(where + ": dtype '" + name +
                    "' is not supported; expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or "
                    "BOOL");
  return it->second;
}

std::string safetensors_dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat64:
      return "F64";
    case torch::kFloat32:
      return "F32";
    case torch::kFloat16:
      return "F16";
    case torch::kBFloat16:
      return "BF16";
    case torch::kInt64:
      return "I64";
    case torch::kInt32:
      return "I32";
    case torch::kInt16:
      return "I16";
    case torch::kInt8:
      return "I8";
    case torch::kUInt8:
      return "U8";
    case torch::kBool:
      return "BOOL";
    default:
      throw UserError(std::string("cannot write dtype ") + c10::toString(dtype) +
                      " to safetensors");
  }
}

struct SafetensorsFile::Mapping {
  void* address = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (address == MAP_FAILED) return;
    {
      std::lock_guard<std::mutex> lock(mappings_mutex());
      live_mappings().erase(reinterpret_cast<uintptr_t>(address));
    }
    munmap(address, size);
  }
};

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const std::string where = "safetensors file '" + path + "'";
  auto bad = [&](const std::string& why) { return UserError(where + ": " + why); };
  std::error_code error;
  if (!fs::is_regular_file(path, error)) throw bad("not found (expected a regular file)");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw bad(std::string("cannot open: ") + std::strerror(errno));
  struct stat info {};
  if (fstat(fd, &info) != 0) {
    ::close(fd);
    throw bad("cannot stat");
  }
  const uint64_t file_size = static_cast<uint64_t>(info.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw bad("only " + std::to_string(file_size) +
              " bytes; expected an 8-byte header length and a JSON header");
  }
  mapping_ = std::make_shared<Mapping>();
  // Private and writable: a caller that writes into a view changes its own copy of the page,
  // never the file.
  mapping_->address = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping_->address == MAP_FAILED)
    throw bad(std::string("cannot map: ") + std::strerror(errno));
  mapping_->size = file_size;
  {
    std::lock_guard<std::mutex> lock(mappings_mutex());
    const auto begin = reinterpret_cast<uintptr_t>(mapping_->address);
    live_mappings()[begin] = begin + file_size;
  }
  const char* bytes = static_cast<const char*>(mapping_->address);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes, 8);  // little-endian on every platform attnlab runs on
  if (header_size > kMaxHeaderBytes || header_size > file_size - 8)
    throw bad("header length " + std::to_string(header_size) + " does not fit the file's " +
              std::to_string(file_size) + " bytes (truncated or not a safetensors file)");
  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + header_size);
  } catch (const json::exception& e) {
    throw bad(std::string("malformed JSON header (") + e.what() + ")");
  }
  if (!header.is_object()) throw bad("the header is not a JSON object");
  data_ = bytes + 8 + header_size;
  const uint64_t data_size = file_size - 8 - header_size;
  std::vector<std::pair<uint64_t, std::string>> order;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& value = it.value();
    if (name == "__metadata__") {
      if (!value.is_object()) throw bad("__metadata__ must be an object of strings");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string())
          throw bad("__metadata__ entry '" + m.key() + "' must be a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string tensor_where = where + ", tensor '" + name + "'";
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
        !value.contains("data_offsets") || !value["dtype"].is_string() ||
        !value["shape"].is_array() || !value["data_offsets"].is_array() ||
        value["data_offsets"].size() != 2)
      throw UserError(tensor_where +
                      ": expected {\"dtype\": ..., \"shape\": [...], \"data_offsets\": [b, e]}");
    SafetensorsEntry entry;
    entry.dtype = safetensors_dtype(value["dtype"].get<std::string>(), tensor_where);
    uint64_t numel = 1;
    for (const auto& dim : value["shape"]) {
      if (!dim.is_number_unsigned())
        throw UserError(tensor_where + ": shape entries must be non-negative integers");
      const uint64_t d = dim.get<uint64_t>();
      if (d != 0 && numel > (uint64_t{1} << 62) / d)
        throw UserError(tensor_where + ": shape is too large");
      numel *= d;
      entry.shape.push_back(static_cast<int64_t>(d));
    }
    for (const auto& offset : value["data_offsets"])
      if (!offset.is_number_unsigned())
        throw UserError(tensor_where + ": data_offsets must be non-negative integers");
    entry.begin = value["data_offsets"][0].get<uint64_t>();
    entry.end = value["data_offsets"][1].get<uint64_t>();
    if (entry.begin > entry.end || entry.end > data_size)
      throw UserError(tensor_where + ": data_offsets [" + std::to_string(entry.begin) + ", " +
                      std::to_string(entry.end) + "] lie outside the " + std::to_string(data_size) +
                      " data bytes (truncated file?)");
    const uint64_t expected = numel * static_cast<uint64_t>(element_size(entry.dtype));
    if (entry.end - entry.begin != expected)
      throw UserError(tensor_where + ": " + std::to_string(entry.end - entry.begin) +
                      " data bytes, expected " + std::to_string(expected) + " for its shape");
    entries_[name] = entry;
    order.emplace_back(entry.begin, name);
  }
  std::sort(order.begin(), order.end());
  uint64_t previous_end = 0;
  for (const auto& [begin, name] : order) {
    const SafetensorsEntry& entry = entries_.at(name);
    if (begin < previous_end && entry.end > entry.begin)
      throw bad("tensor '" + name + "' overlaps the tensor before it");
    previous_end = std::max(previous_end, entry.end);
    names_.push_back(name);
  }
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end())
    throw UserError("safetensors file '" + path_ + "' has no tensor '" + name + "'");
  return it->second;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  auto options = torch::TensorOptions().dtype(e.dtype).device(torch::kCPU);
  void* pointer = const_cast<char*>(data_ + e.begin);
  if (e.end == e.begin) return torch::empty(e.shape, options);
  if (reinterpret_cast<uintptr_t>(pointer) % static_cast<uintptr_t>(element_size(e.dtype)) != 0) {
    // The format does not align tensors; LibTorch kernels may assume aligned elements.
    auto copy = torch::empty(e.shape, options);
    std::memcpy(copy.data_ptr(), pointer, e.end - e.begin);
    return copy;
  }
  std::shared_ptr<Mapping> keep = mapping_;
  return torch::from_blob(
      pointer, e.shape, [keep](void*) mutable { keep.reset(); }, options);
}

SafetensorsSet::SafetensorsSet(const std::string& path) {
  std::error_code error;
  if (fs::is_regular_file(path, error)) {
    files_.push_back(std::make_shared<SafetensorsFile>(path));
  } else {
    check_user(fs::is_directory(path, error),
               "weights '" + path + "' do not exist (expected a .safetensors file or a folder)");
    const fs::path folder(path);
    const fs::path index = folder / "model.safetensors.index.json";
    if (fs::exists(index)) {
      json parsed;
      try {
        std::ifstream in(index);
        parsed = json::parse(in);
      } catch (const json::exception& e) {
        throw UserError("'" + index.string() + "': malformed JSON (" + e.what() + ")");
      }
      check_user(
          parsed.is_object() && parsed.contains("weight_map") && parsed["weight_map"].is_object(),
          "'" + index.string() + "': expected {\"weight_map\": {\"<tensor>\": \"<file>\"}}");
      std::map<std::string, std::string> wanted;  // tensor -> shard
      std::map<std::string, size_t> shard_index;
      for (auto it = parsed["weight_map"].begin(); it != parsed["weight_map"].end(); ++it) {
        check_user(it.value().is_string(),
                   "'" + index.string() + "': weight_map['" + it.key() + "'] is not a file name");
        const std::string shard = it.value().get<std::string>();
        check_user(shard.find('/') == std::string::npos && shard != ".." && !shard.empty(),
                   "'" + index.string() + "': shard '" + shard + "' must be a file in the folder");
        wanted[it.key()] = shard;
        if (!shard_index.count(shard)) {
          shard_index[shard] = files_.size();
          files_.push_back(std::make_shared<SafetensorsFile>((folder / shard).string()));
        }
      }
      for (const auto& [name, shard] : wanted) {
        check_user(files_[shard_index[shard]]->contains(name),
                   "'" + index.string() + "' names tensor '" + name + "' in '" + shard +
                       "', which does not hold it");
        owner_[name] = shard_index[shard];
      }
      return;
    }
    const fs::path single = folder / "model.safetensors";
    check_user(fs::exists(single), "folder '" + path +
                                       "' has no model.safetensors or "
                                       "model.safetensors.index.json");
    files_.push_back(std::make_shared<SafetensorsFile>(single.string()));
  }
  for (const auto& name : files_.front()->names()) owner_[name] = 0;
}

std::vector<std::string> SafetensorsSet::names() const {
  std::vector<std::string> names;
  for (const auto& item : owner_) names.push_back(item.first);
  return names;
}

const SafetensorsEntry& SafetensorsSet::entry(const std::string& name) const {
  auto it = owner_.find(name);
  check_user(it != owner_.end(), "no tensor '" + name + "' in the safetensors weights");
  return files_[it->second]->entry(name);
}

torch::Tensor SafetensorsSet::tensor(const std::string& name) const {
  auto it = owner_.find(name);
  check_user(it != owner_.end(), "no tensor '" + name + "' in the safetensors weights");
  return files_[it->second]->tensor(name);
}

const std::string& SafetensorsSet::file_of(const std::string& name) const {
  return files_[owner_.at(name)]->path();
}

bool has_safetensors(const std::string& path) {
  std::error_code error;
  if (fs::is_regular_file(path, error)) return fs::path(path).extension() == ".safetensors";
  return fs::exists(fs::path(path) / "model.safetensors", error) ||
         fs::exists(fs::path(path) / "model.safetensors.index.json", error);
}

void release_mapped_pages(const torch::Tensor& tensor) {
  if (!tensor.defined() || !tensor.device().is_cpu() || tensor.numel() == 0) return;
  // The span of the view's elements (non-negative strides: views the mapping code makes).
  int64_t extent = 1;
  for (int64_t d = 0; d < tensor.dim(); ++d) {
    if (tensor.stride(d) < 0) return;
    extent += (tensor.size(d) - 1) * tensor.stride(d);
  }
  const auto begin = reinterpret_cast<uintptr_t>(tensor.data_ptr());
  const uintptr_t end = begin + static_cast<uintptr_t>(extent) * tensor.element_size();
  std::lock_guard<std::mutex> lock(mappings_mutex());
  auto it = live_mappings().upper_bound(begin);
  if (it == live_mappings().begin()) return;
  --it;
  if (begin < it->first || end > it->second) return;  // not (entirely) a mapped file
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page;  // whole pages inside the span only
  const uintptr_t last = end / page * page;
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void write_safetensors(const std::string& path, const NamedTensorList& tensors,
                       const std::map<std::string, std::string>& metadata,
                       std::optional<torch::ScalarType> dtype) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    check_user(seen.insert(name).second, "tensor '" + name + "' is written twice to " + path);
    const torch::ScalarType type = dtype.value_or(tensor.scalar_type());
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * c10::elementSize(type);
    header[name] = {{"dtype", safetensors_dtype_name(type)},
                    {"shape", tensor.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_size = text.size();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check_user(static_cast<bool>(out), "cannot write '" + tmp + "'");
    out.write(reinterpret_cast<const char*>(&header_size), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, tensor] : tensors) {
      torch::Tensor data =
          tensor.detach().to(torch::kCPU).to(dtype.value_or(tensor.scalar_type())).contiguous();
      out.write(static_cast<const char*>(data.data_ptr()),
                static_cast<std::streamsize>(data.numel() * data.element_size()));
      release_mapped_pages(tensor);
    }
    out.flush();
    if (!out) {
      std::error_code ignored;
      fs::remove(tmp, ignored);
      throw UserError("cannot write '" + tmp + "' (disk full?)");
    }
  }
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  fs::rename(tmp, path);
  fsync_directory(fs::absolute(path).parent_path().string());
}

std::vector<std::string> write_safetensors_folder(const std::string& folder,
                                                  const NamedTensorList& tensors,
                                                  uint64_t max_shard_bytes,
                                                  std::optional<torch::ScalarType> dtype) {
  fs::create_directories(folder);
  std::vector<NamedTensorList> shards(1);
  uint64_t shard_bytes = 0, total_bytes = 0;
  for (const auto& item : tensors) {
    const uint64_t bytes = static_cast<uint64_t>(item.second.numel()) *
                           c10::elementSize(dtype.value_or(item.second.scalar_type()));
    if (!shards.back().empty() && max_shard_bytes > 0 && shard_bytes + bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(item);
    shard_bytes += bytes;
    total_bytes += bytes;
  }
  std::vector<std::string> written;
  if (shards.size() == 1) {
    const std::string path = (fs::path(folder) / "model.safetensors").string();
    write_safetensors(path, tensors, {{"format", "pt"}}, dtype);
    return {path};
  }
  json weight_map = json::object();
  for (size_t k = 0; k < shards.size(); ++k) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    write_safetensors((fs::path(folder) / name).string(), shards[k], {{"format", "pt"}}, dtype);
    for (const auto& item : shards[k]) weight_map[item.first] = name;
    written.push_back((fs::path(folder) / name).string());
  }
  json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
  const std::string index_path = (fs::path(folder) / "model.safetensors.index.json").string();
  write_file_atomic(index_path, index.dump(2) + "\n");
  written.push_back(index_path);
  return written;
}

}  // namespace attnlab
