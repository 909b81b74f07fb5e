// Implementation of checkpoint.h: archive layout, CRC trailer, atomic publish, retention, resume.
#include "trainer/checkpoint.h"

#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <regex>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"
#include "config/moved_keys.h"
#include "config/run_options.h"
#include "config/yaml_tree.h"
#include "data/hash.h"
#include "io/atomic_file.h"
#include "io/weights_io.h"
#include "trainer/muon.h"
#include "trainer/nonfinite_guard.h"

namespace attnlab {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'A', 'T', 'N', 'L', 'C', 'K', 'P', '1'};
constexpr size_t kTrailerSize = 24;  // magic[8] + archive size u64 + crc32 u32 + version u32
constexpr uint32_t kFormatVersion = 1;

std::string step_file_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step_%08lld.ckpt", static_cast<long long>(step));
  return name;
}

// c10::Error's message carries a C++ backtrace after the first line.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

uint32_t crc_of(const char* data, size_t size) {
  return static_cast<uint32_t>(crc32_z(0L, reinterpret_cast<const Bytef*>(data), size));
}

std::string trailer(const std::string& archive) {
  std::string t(kTrailerSize, '\0');
  uint64_t size = archive.size();
  uint32_t crc = crc_of(archive.data(), archive.size());
  std::memcpy(&t[0], kMagic, 8);
  std::memcpy(&t[8], &size, 8);
  std::memcpy(&t[16], &crc, 4);
  std::memcpy(&t[20], &kFormatVersion, 4);
  return t;
}

// Size of the archive part of a checkpoint's bytes; UserError naming `path` when truncated/corrupt.
size_t verified_archive_size(const std::string& path, const std::string& bytes) {
  auto corrupt = [&](const std::string& why) {
    return UserError("checkpoint '" + path + "' is corrupted or truncated (" + why +
                     "); use an earlier checkpoint");
  };
  if (bytes.size() < kTrailerSize) throw corrupt("only " + std::to_string(bytes.size()) + " bytes");
  const char* t = bytes.data() + bytes.size() - kTrailerSize;
  if (std::memcmp(t, kMagic, 8) != 0) throw corrupt("missing end marker");
  uint64_t size = 0;
  uint32_t crc = 0;
  std::memcpy(&size, t + 8, 8);
  std::memcpy(&crc, t + 16, 4);
  if (size != bytes.size() - kTrailerSize) throw corrupt("size mismatch");
  if (crc_of(bytes.data(), size) != crc) throw corrupt("CRC32 mismatch");
  return size;
}

// A checkpoint's bytes, after checking that `path` is a regular file whose trailer (magic, archive
// size) fits its size, so a device, a huge foreign file or a truncated file is rejected before
// anything is allocated.
std::string read_checkpoint_bytes(const std::string& path) {
  auto corrupt = [&](const std::string& why) {
    return UserError("checkpoint '" + path + "' is corrupted or truncated (" + why +
                     "); use an earlier checkpoint");
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw UserError("cannot read checkpoint '" + path + "'");
  if (!S_ISREG(st.st_mode)) throw UserError("checkpoint '" + path + "' is not a regular file");
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < kTrailerSize) throw corrupt("only " + std::to_string(file_size) + " bytes");
  std::ifstream in(path, std::ios::binary);
  char t[kTrailerSize];
  in.seekg(-static_cast<std::streamoff>(kTrailerSize), std::ios::end);
  in.read(t, kTrailerSize);
  if (!in) throw UserError("cannot read checkpoint '" + path + "'");
  if (std::memcmp(t, kMagic, 8) != 0) throw corrupt("missing end marker");
  uint64_t size = 0;
  std::memcpy(&size, t + 8, 8);
  if (size != file_size - kTrailerSize) throw corrupt("size mismatch");
  return read_file_bytes(path);
}

// Every record of the archive's zip directory is no larger than the archive itself (records are
// stored uncompressed), so a damaged size field cannot make the parser allocate gigabytes.
void check_archive_records(const std::string& path, const char* data, size_t size) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(
        std::make_shared<caffe2::serialize::MemoryReadAdapter>(data, static_cast<off_t>(size)));
    for (const auto& name : reader.getAllRecords()) {
      const size_t record = reader.getRecordSize(name);
      check_user(record <= size, "checkpoint '" + path + "' is damaged: record '" + name +
                                     "' claims " + std::to_string(record) + " bytes in a " +
                                     std::to_string(size) + "-byte archive");
    }
  } catch (const c10::Error& e) {
    throw UserError("checkpoint '" + path +
                    "' cannot be parsed: " + first_line(e.what_without_backtrace()));
  }
}

// Little-endian fields of the zip structures.
uint16_t le16(const char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t le32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t le64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// CRC32 of a record's content: its bytes when stored (method 0), else (8, deflate: PyTorch
// compresses its small code records) of the inflated bytes; a record that does not inflate to
// `uncompressed` bytes gets a CRC of 0 ^ 1 so it never matches by accident.
uint32_t record_crc(const char* data, uint64_t size, uint16_t method, uint64_t uncompressed) {
  if (method == 0) return crc_of(data, size);
  constexpr uint64_t kMaxInflated = uint64_t{64} << 20;  // code records are kilobytes
  if (uncompressed > kMaxInflated || size > std::numeric_limits<uInt>::max()) return 1;
  std::string out(static_cast<size_t>(uncompressed), '\0');
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) return 1;
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  stream.avail_in = static_cast<uInt>(size);
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&stream, Z_FINISH);
  const bool complete = rc == Z_STREAM_END && stream.total_out == uncompressed;
  inflateEnd(&stream);
  if (!complete) return crc_of(out.data(), out.size()) ^ 1;
  return crc_of(out.data(), out.size());
}

// The archive's zip structure, checked the way a reader that trusts it would not: every central
// directory entry's local header must repeat its name (length and bytes), method and, unless the
// writer used a data descriptor, its CRC; its data must lie before the central directory; and the
// data must have the CRC32 the directory records. PyTorch's reader finds a record's data through
// the local header's name and extra lengths and does not check CRCs, so one damaged length (a
// writer bug behind a re-fixed file checksum) made it read a tensor from the wrong offset.
void check_zip_structure(const std::string& path, const char* data, size_t size) {
  auto damaged = [&](const std::string& why) {
    return UserError("checkpoint '" + path + "' is damaged: " + why +
                     "; use an earlier checkpoint");
  };
  if (size < 22) throw damaged("no zip end record");
  // End of central directory: the last signature within the final 64 KiB + 22 bytes.
  size_t eocd = std::string::npos;
  const size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
  for (size_t at = size - 22 + 1; at-- > lowest;) {
    if (le32(data + at) == 0x06054b50) {
      eocd = at;
      break;
    }
  }
  if (eocd == std::string::npos) throw damaged("no zip end record");
  uint64_t entries = le16(data + eocd + 10);
  uint64_t directory_size = le32(data + eocd + 12);
  uint64_t directory = le32(data + eocd + 16);
  if (entries == 0xFFFF || directory_size == 0xFFFFFFFF || directory == 0xFFFFFFFF) {
    if (eocd < 20 || le32(data + eocd - 20) != 0x07064b50) throw damaged("no zip64 locator");
    const uint64_t record = le64(data + eocd - 20 + 8);
    if (record > size - 56 || le32(data + record) != 0x06064b50)
      throw damaged("bad zip64 end record");
    entries = le64(data + record + 32);
    directory_size = le64(data + record + 40);
    directory = le64(data + record + 48);
  }
  if (directory > size || directory_size > size - directory)
    throw damaged("the zip directory lies outside the archive");
  uint64_t at = directory;
  const uint64_t directory_end = directory + directory_size;
  for (uint64_t i = 0; i < entries; ++i) {
    if (at + 46 > directory_end || le32(data + at) != 0x02014b50)
      throw damaged("zip directory entry " + std::to_string(i) + " is malformed");
    const char* c = data + at;
    const uint16_t flags = le16(c + 8), method = le16(c + 10);
    const uint32_t crc = le32(c + 16);
    uint64_t compressed = le32(c + 20), uncompressed = le32(c + 24);
    const uint16_t name_length = le16(c + 28), extra_length = le16(c + 30);
    const uint16_t comment_length = le16(c + 32);
    uint64_t local = le32(c + 42);
    if (at + 46 + name_length + extra_length + comment_length > directory_end)
      throw damaged("zip directory entry " + std::to_string(i) + " is malformed");
    const std::string name(c + 46, name_length);
    // zip64 sizes and offset, in this order, for the fields that hold 0xFFFFFFFF.
    for (const char* e = c + 46 + name_length; e + 4 <= c + 46 + name_length + extra_length;) {
      const uint16_t id = le16(e), length = le16(e + 2);
      const char* field = e + 4;
      if (id == 0x0001) {
        const char* field_end = field + length;
        if (uncompressed == 0xFFFFFFFF && field + 8 <= field_end)
          uncompressed = le64(field), field += 8;
        if (compressed == 0xFFFFFFFF && field + 8 <= field_end)
          compressed = le64(field), field += 8;
        if (local == 0xFFFFFFFF && field + 8 <= field_end) local = le64(field);
      }
      e += 4 + length;
    }
    const std::string record = "zip record '" + name + "'";
    if (local > directory || directory - local < 30 || le32(data + local) != 0x04034b50)
      throw damaged(record + " has no local header where the directory says");
    const char* l = data + local;
    const uint16_t local_flags = le16(l + 6), local_method = le16(l + 8);
    const uint16_t local_name_length = le16(l + 26), local_extra_length = le16(l + 28);
    if (local_name_length != name_length)
      throw damaged(record + ": its local header's name length is " +
                    std::to_string(local_name_length) + ", the directory's " +
                    std::to_string(name_length));
    const uint64_t data_start = local + 30 + local_name_length + local_extra_length;
    if (data_start > directory || compressed > directory - data_start)
      throw damaged(record + "'s data runs into the zip directory");
    if (std::memcmp(l + 30, name.data(), name_length) != 0)
      throw damaged(record + ": its local header names another record");
    if (local_method != method || (method != 0 && method != 8) ||
        (method == 0 && compressed != uncompressed))
      throw damaged(record + ": its method or size differs from the directory's");
    if (!(flags & 8) && !(local_flags & 8) && le32(l + 14) != crc)
      throw damaged(record + ": its local header's CRC32 differs from the directory's");
    if (record_crc(data + data_start, compressed, method, uncompressed) != crc)
      throw damaged(record + ": CRC32 mismatch");
    at += 46 + name_length + extra_length + comment_length;
  }
}

// XXH64 of a tensor's bytes, seeded with its dtype and shape, as 16 hex digits: recorded for
// every tensor when a checkpoint is written, compared when it is read.
std::string tensor_hash(const torch::Tensor& tensor) {
  const torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
  std::ostringstream layout;
  layout << cpu.scalar_type() << cpu.sizes();
  const uint64_t seed = Fnv64().update(layout.str()).digest();
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(xxh64(cpu.data_ptr(), cpu.nbytes(), seed)));
  return hex;
}

c10::Dict<std::string, std::string> hashes_of(const NamedTensorList& tensors) {
  c10::Dict<std::string, std::string> out;
  for (const auto& [name, tensor] : tensors)
    if (tensor.defined()) out.insert_or_assign(name, tensor_hash(tensor));
  return out;
}

// The hashes recorded under `key` of a checkpoint's meta section (empty for a checkpoint written
// before they were: it loads unchecked, as before).
std::map<std::string, std::string> recorded_hashes(torch::serialize::InputArchive& meta,
                                                   const std::string& key) {
  std::map<std::string, std::string> out;
  c10::IValue v;
  if (!meta.try_read(key, v)) return out;
  for (const auto& entry : v.toGenericDict())
    out[entry.key().toStringRef()] = entry.value().toStringRef();
  return out;
}

// UserError naming the first tensor of `tensors` whose bytes differ from what was recorded, or a
// recorded tensor that is missing.
void check_tensor_hashes(const std::string& path,
                         const std::map<std::string, std::string>& recorded,
                         const NamedTensorList& tensors, const std::string& what) {
  if (recorded.empty()) return;
  std::map<std::string, const torch::Tensor*> present;
  for (const auto& [name, tensor] : tensors) present[name] = &tensor;
  for (const auto& [name, hash] : recorded) {
    auto found = present.find(name);
    if (found == present.end())
      throw UserError("checkpoint '" + path + "' is damaged: " + what + " tensor '" + name +
                      "' is missing; use an earlier checkpoint");
    if (tensor_hash(*found->second) != hash)
      throw UserError("checkpoint '" + path + "' is damaged: " + what + " tensor '" + name +
                      "' differs from the one written (its hash changed); use an earlier "
                      "checkpoint");
  }
}

NamedTensorList named(const StateDict& tensors) {
  return NamedTensorList(tensors.begin(), tensors.end());
}

// Reads and parses the archive of a checkpoint file.
// Tensors are mapped to `device` (the model's device when resuming, CPU for export/init_from), so
// a checkpoint written on a GPU loads on a CPU-only machine and vice versa.
torch::serialize::InputArchive open_archive(const std::string& path,
                                            c10::optional<torch::Device> device) {
  std::string bytes = read_checkpoint_bytes(path);
  size_t size = verified_archive_size(path, bytes);
  check_zip_structure(path, bytes.data(), size);
  check_archive_records(path, bytes.data(), size);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(bytes.data(), size, device);
  } catch (const c10::Error& e) {
    throw UserError("checkpoint '" + path +
                    "' cannot be parsed: " + first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {  // e.g. TorchScript's parser on a damaged type string
    throw UserError("checkpoint '" + path + "' cannot be parsed: " + first_line(e.what()));
  }
  return archive;
}

// Runs `body` (which reads or applies a parsed archive) so that any failure is a UserError
// naming the checkpoint: a CRC-valid file can still hold a damaged archive structure.
template <typename Body>
auto guarded(const std::string& path, Body body) -> decltype(body()) {
  try {
    return body();
  } catch (const UserError&) {
    throw;
  } catch (const c10::Error& e) {
    throw UserError("checkpoint '" + path +
                    "' is damaged: " + first_line(e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    throw UserError("checkpoint '" + path + "' is damaged: it asks for more memory than there is");
  } catch (const std::exception& e) {
    throw UserError("checkpoint '" + path + "' is damaged: " + first_line(e.what()));
  }
}

// The model section's tensors, each checked to be a defined tensor.
StateDict read_model_tensors(torch::serialize::InputArchive& archive, const std::string& path) {
  torch::serialize::InputArchive model_archive;
  check_user(archive.try_read("model", model_archive),
             "checkpoint '" + path + "' has no 'model' section");
  StateDict weights;
  for (const auto& key : model_archive.keys()) {
    torch::Tensor tensor;
    check_user(model_archive.try_read(key, tensor) && tensor.defined(),
               "checkpoint '" + path + "': model entry '" + key + "' is not a tensor");
    weights[key] = tensor;
  }
  return weights;
}

torch::serialize::InputArchive sub_archive(torch::serialize::InputArchive& archive,
                                           const std::string& key, const std::string& path) {
  torch::serialize::InputArchive sub;
  check_user(archive.try_read(key, sub), "checkpoint '" + path + "' has no '" + key + "' section");
  return sub;
}

std::vector<c10::Device> cuda_devices() {
  std::vector<c10::Device> devices;
  if (torch::cuda::is_available())
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i)
      devices.emplace_back(c10::kCUDA, static_cast<c10::DeviceIndex>(i));
  return devices;
}

void save_rng(torch::serialize::OutputArchive& out) {
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    out.write("cpu", gen.get_state());
  }
  auto devices = cuda_devices();
  out.write("cuda_count", c10::IValue(static_cast<int64_t>(devices.size())));
  for (const auto& device : devices) {
    auto gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    out.write("cuda" + std::to_string(device.index()), gen.get_state());
  }
}

void restore_rng_states(torch::serialize::InputArchive& in, const std::string& path) {
  torch::Tensor cpu;
  if (!in.try_read("cpu", cpu)) return;  // saved with save_rng=false
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(cpu.to(torch::kCPU));  // the archive may map tensors to a GPU
  }
  c10::IValue count;
  in.read("cuda_count", count);
  auto devices = cuda_devices();
  if (count.toInt() != static_cast<int64_t>(devices.size())) {
    std::cerr << "warning: checkpoint '" << path << "' holds " << count.toInt()
              << " CUDA RNG states but " << devices.size()
              << " CUDA devices are visible; CUDA RNG not restored\n";
    return;
  }
  for (const auto& device : devices) {
    torch::Tensor state;
    in.read("cuda" + std::to_string(device.index()), state);
    auto gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state.to(torch::kCPU));
  }
}

TrainState read_meta(torch::serialize::InputArchive& meta, std::string* config_yaml) {
  TrainState s;
  c10::IValue v;
  if (meta.try_read("tokenizer", v)) s.tokenizer = v.toStringRef();
  meta.read("step", v);
  s.step = v.toInt();
  meta.read("best_val_loss", v);
  s.best_val_loss = v.toDouble();
  meta.read("tokens_seen", v);
  s.tokens_seen = v.toInt();
  meta.read("sampler_state", v);
  s.sampler_state = v.toStringRef();
  meta.read("scheduler", v);
  s.scheduler = v.toStringRef();
  meta.read("extra", v);
  for (const auto& entry : v.toGenericDict())
    s.extra[entry.key().toStringRef()] = entry.value().toStringRef();
  if (config_yaml) {
    meta.read("config_yaml", v);
    *config_yaml = v.toStringRef();
  }
  return s;
}

std::string read_pointer(const fs::path& file) {
  std::string text = read_file_bytes(file.string());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// `latest` names a checkpoint that is gone (deleted by hand, or a copy without it): the newest
// step file is used instead, and the user is told.
void warn_missing_latest(const fs::path& dir, const fs::path& target) {
  std::cerr << "warning: " << (dir / "latest").string() << " names " << target.filename().string()
            << ", which does not exist; using the newest step file instead\n";
}

fs::path checkpoints_of(const std::string& path) {
  fs::path p(path);
  return fs::is_directory(p / "checkpoints") ? p / "checkpoints" : p;
}

void apply_retention(const fs::path& dir, int64_t keep_last) {
  if (keep_last <= 0) return;
  std::string latest = fs::exists(dir / "latest") ? read_pointer(dir / "latest") : "";
  fs::path best = dir / "best.ckpt";
  auto files = list_checkpoints(dir.string());
  for (size_t i = static_cast<size_t>(keep_last); i < files.size(); ++i) {
    fs::path file(files[i]);
    if (file.filename() == latest) continue;
    std::error_code ec;
    if (fs::exists(best) && fs::equivalent(best, file, ec)) continue;
    fs::remove(file, ec);
  }
}

}  // namespace

std::string checkpoint_dir(const std::string& run_dir) {
  return (fs::path(run_dir) / "checkpoints").string();
}

bool is_checkpoint_file(const std::string& path) {
  if (!fs::is_regular_file(path)) return false;
  if (fs::path(path).extension() == ".ckpt") return true;
  std::ifstream in(path, std::ios::binary);
  if (fs::file_size(path) < kTrailerSize) return false;
  in.seekg(-static_cast<std::streamoff>(kTrailerSize), std::ios::end);
  char magic[8];
  in.read(magic, 8);
  return in && std::memcmp(magic, kMagic, 8) == 0;
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  fs::path dir = checkpoints_of(run_dir);
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  static const std::regex pattern(R"(step_\d{8,}\.ckpt)");
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && std::regex_match(entry.path().filename().string(), pattern))
      out.push_back(entry.path().string());
  // Zero-padded names sort by step; longer names (steps >= 1e8) are later.
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a > b;
  });
  return out;
}

std::string resolve_checkpoint(const std::string& path) {
  check_user(fs::exists(path), "checkpoint path '" + path + "' does not exist");
  if (fs::is_regular_file(path)) return path;
  fs::path dir = checkpoints_of(path);
  if (fs::exists(dir / "latest")) {
    fs::path target = dir / read_pointer(dir / "latest");
    if (fs::is_regular_file(target)) return target.string();
    warn_missing_latest(dir, target);
  }
  auto files = list_checkpoints(dir.string());
  check_user(!files.empty(),
             "no checkpoint found in '" + path + "' (expected checkpoints/step_<8 digits>.ckpt)");
  return files.front();
}

std::string save_checkpoint(const std::string& run_dir, const torch::nn::Module& model,
                            const torch::optim::Optimizer* optimizer, const TrainState& state,
                            const std::string& config_yaml, const SaveOptions& options) {
  if (options.check_finite) {
    NamedTensorList tensors = named_parameters_and_buffers(model);
    if (optimizer) {
      NamedTensorList moments = named_optimizer_state(model, *optimizer);
      tensors.insert(tensors.end(), moments.begin(), moments.end());
    }
    const std::string bad = first_nonfinite(tensors);
    check_user(bad.empty(), "refusing to write the checkpoint of step " +
                                std::to_string(state.step) + " to '" + run_dir + "': tensor '" +
                                bad + "' is not finite (the run diverged)");
  }
  fs::path dir = checkpoint_dir(run_dir);
  fs::create_directories(dir);
  // Leftovers of an interrupted save are never valid checkpoints.
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".tmp") fs::remove(entry.path());

  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive(archive.compilation_unit());
  for (const auto& item : model.named_parameters(true))
    model_archive.write(item.key(), item.value().detach());
  for (const auto& item : model.named_buffers(true))
    model_archive.write(item.key(), item.value().detach(), /*is_buffer=*/true);
  archive.write("model", model_archive);

  if (optimizer) {
    torch::serialize::OutputArchive optim_archive(archive.compilation_unit());
    optimizer->save(optim_archive);
    archive.write("optimizer", optim_archive);
  }
  if (options.save_rng) {
    torch::serialize::OutputArchive rng_archive(archive.compilation_unit());
    save_rng(rng_archive);
    archive.write("rng", rng_archive);
  }
  torch::serialize::OutputArchive meta(archive.compilation_unit());
  meta.write("format_version", c10::IValue(static_cast<int64_t>(kFormatVersion)));
  meta.write("step", c10::IValue(state.step));
  meta.write("best_val_loss", c10::IValue(state.best_val_loss));
  meta.write("tokens_seen", c10::IValue(state.tokens_seen));
  meta.write("sampler_state", c10::IValue(state.sampler_state));
  meta.write("scheduler", c10::IValue(state.scheduler));
  c10::Dict<std::string, std::string> extra;
  for (const auto& [k, v] : state.extra) extra.insert(k, v);
  meta.write("extra", c10::IValue(extra));
  meta.write("config_yaml", c10::IValue(config_yaml));
  if (!state.tokenizer.empty()) meta.write("tokenizer", c10::IValue(state.tokenizer));
  // A hash of every model and optimizer tensor, so a tensor changed anywhere between here and a
  // load (a writer bug, a flip behind re-fixed checksums) is found and named at load.
  NamedTensorList model_tensors;
  for (const auto& item : model.named_parameters(true))
    model_tensors.emplace_back(item.key(), item.value());
  for (const auto& item : model.named_buffers(true))
    model_tensors.emplace_back(item.key(), item.value());
  meta.write("tensor_hashes", c10::IValue(hashes_of(model_tensors)));
  if (optimizer)
    meta.write("optimizer_hashes",
               c10::IValue(hashes_of(named_optimizer_state(model, *optimizer))));
  archive.write("meta", meta);

  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  bytes += trailer(bytes);

  std::string name = step_file_name(state.step);
  fs::path file = dir / name;
  write_file_atomic(file.string(), bytes);
  write_file_atomic((dir / "latest").string(), name + "\n");
  if (options.is_best) {
    fs::path tmp = dir / "best.ckpt.tmp";
    std::error_code ec;
    fs::create_hard_link(file, tmp, ec);
    if (ec) {
      write_file_atomic((dir / "best.ckpt").string(), bytes);
    } else {
      fs::rename(tmp, dir / "best.ckpt");
      fsync_directory(dir.string());
    }
  }
  apply_retention(dir, options.keep_last);
  return file.string();
}

void check_checkpoint_tokenizer(const std::string& path, const std::string& recorded,
                                const std::string& current) {
  if (recorded.empty() || current.empty() || recorded == current) return;
  throw TokenizerMismatch("checkpoint '" + path + "' was trained with tokenizer '" + recorded +
                          "' but the config's tokenizer is '" + current +
                          "' (a changed tokenizer cache or tokenizer.* setting); restore the "
                          "tokenizer or start a new run");
}

namespace {

// LibTorch 1.x's optimizer serializer keyed each parameter's state by its TensorImpl pointer
// printed in hex ("0x55d0c0a1b2c0"); 2.x writes and parses decimal keys (std::stoull), so on a
// checkpoint written by the 1.13 build every key parses as 0 and all parameters but one are left
// with a null state (the next step would crash). Such archives are read here with the keys parsed
// as hex (the per-parameter moments and step counts keep their layout). The test
// Checkpoint.LoadsACheckpointWrittenByLibTorch113 loads a real 1.13 checkpoint.
bool has_hex_state_keys(torch::serialize::InputArchive& optim_archive) {
  torch::serialize::InputArchive state;
  if (!optim_archive.try_read("state", state)) return false;
  for (const auto& key : state.keys())
    if (key.rfind("0x", 0) == 0) return true;
  return false;
}

void load_hex_keyed_adamw(torch::serialize::InputArchive& archive, torch::optim::AdamW& optimizer,
                          const std::string& path) {
  torch::serialize::InputArchive state_archive;
  archive.read("state", state_archive);
  std::map<uint64_t, std::unique_ptr<torch::optim::AdamWParamState>> saved;
  for (const auto& key : state_archive.keys()) {
    torch::serialize::InputArchive one;
    state_archive.read(key, one);
    auto param_state = std::make_unique<torch::optim::AdamWParamState>();
    param_state->serialize(one);
    saved[std::stoull(key, nullptr, 16)] = std::move(param_state);
  }
  torch::serialize::InputArchive groups;
  archive.read("param_groups", groups);
  torch::Tensor group_count;
  groups.read("param_groups/size", group_count);
  check_user(group_count.item<int64_t>() == static_cast<int64_t>(optimizer.param_groups().size()),
             "checkpoint '" + path +
                 "': optimizer state does not fit the current parameter "
                 "groups (did freeze / lr_multipliers change?)");
  for (size_t i = 0; i < optimizer.param_groups().size(); ++i) {
    torch::serialize::InputArchive group;
    groups.read("param_groups/" + std::to_string(i), group);
    torch::Tensor count;
    group.read("params/size", count);
    auto& current = optimizer.param_groups()[i];
    const std::vector<torch::Tensor> params = current.params();
    check_user(count.item<int64_t>() == static_cast<int64_t>(params.size()),
               "checkpoint '" + path + "': optimizer parameter group " + std::to_string(i) +
                   " has a different size than the model's");
    for (size_t index = 0; index < params.size(); ++index) {
      c10::IValue key;
      group.read("params/" + std::to_string(index), key);
      auto found = saved.find(std::stoull(key.toStringRef(), nullptr, 16));
      if (found != saved.end())
        optimizer.state()[params[index].unsafeGetTensorImpl()] = std::move(found->second);
    }
  }
  // The group options (lr, betas, eps, weight decay) stay as configured: the 1.x archive stores
  // them in a layout 2.x cannot read, and the trainer sets them from the config anyway.
}

}  // namespace

LoadedCheckpoint load_checkpoint(const std::string& path_or_dir, torch::nn::Module& model,
                                 torch::optim::Optimizer* optimizer, TrainState* state,
                                 bool restore_rng) {
  const std::string path = resolve_checkpoint(path_or_dir);
  c10::optional<torch::Device> device = torch::Device(torch::kCPU);
  for (const auto& p : model.parameters()) {
    device = p.device();
    break;
  }
  torch::serialize::InputArchive archive = open_archive(path, device);
  std::string config_yaml;
  std::map<std::string, std::string> model_hashes, optimizer_hashes;
  // Everything is read and checked before the model, optimizer or RNG are touched.
  TrainState loaded_state = guarded(path, [&] {
    auto meta = sub_archive(archive, "meta", path);
    model_hashes = recorded_hashes(meta, "tensor_hashes");
    optimizer_hashes = recorded_hashes(meta, "optimizer_hashes");
    return read_meta(meta, &config_yaml);
  });
  const std::string expected_tokenizer = state ? state->tokenizer : "";
  check_checkpoint_tokenizer(path, loaded_state.tokenizer, expected_tokenizer);
  if (loaded_state.tokenizer.empty()) loaded_state.tokenizer = expected_tokenizer;
  StateDict weights = guarded(path, [&] { return read_model_tensors(archive, path); });
  guarded(path, [&] { check_tensor_hashes(path, model_hashes, named(weights), "model"); });
  guarded(path, [&] {
    try {
      load_state_dict(model, weights, /*strict=*/true);
    } catch (const WeightMismatch& e) {
      throw CheckpointMismatch(path, config_yaml, e.report());
    }
  });
  if (optimizer) {
    // optim.name of the checkpoint's run (adamw before there was a choice) against this
    // optimizer: another optimizer's state cannot be loaded (LibTorch would assert).
    std::string saved_name = "adamw";
    try {
      const YAML::Node saved = YAML::Load(config_yaml);
      saved_name = cfg::get_or<std::string>(saved, "optim.name", saved_name);
    } catch (const std::exception&) {
    }
    const std::string current_name = dynamic_cast<torch::optim::AdamW*>(optimizer) ? "adamw"
                                     : dynamic_cast<torch::optim::SGD*>(optimizer) ? "sgd"
                                     : dynamic_cast<Muon*>(optimizer)              ? "muon"
                                                                                   : saved_name;
    if (saved_name != current_name)
      throw OptimizerMismatch("checkpoint '" + path + "' holds " + saved_name +
                              " state but this run uses optim.name=" + current_name +
                              "; resume with optim=" + saved_name +
                              ", or start a new run.dir with init_from=" + path +
                              " to keep only the weights");
    auto optim_archive = guarded(path, [&] { return sub_archive(archive, "optimizer", path); });
    try {
      if (has_hex_state_keys(optim_archive)) {
        auto* adamw = dynamic_cast<torch::optim::AdamW*>(optimizer);
        check_user(adamw != nullptr, "checkpoint '" + path +
                                         "' was written by LibTorch 1.x and holds AdamW state; "
                                         "resume it with AdamW or start over with init_from=" +
                                         path);
        load_hex_keyed_adamw(optim_archive, *adamw, path);
      } else {
        optimizer->load(optim_archive);
      }
      // After loading (the state is keyed by the model's parameters only then); a damaged
      // tensor makes resume fall back, and the fallback's load replaces all of this state.
      check_tensor_hashes(path, optimizer_hashes, named_optimizer_state(model, *optimizer),
                          "optimizer");
    } catch (const UserError&) {
      throw;
    } catch (const c10::Error& e) {
      throw UserError("checkpoint '" + path +
                      "': optimizer state does not fit the current "
                      "parameter groups (did freeze / lr_multipliers change?): " +
                      first_line(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      throw UserError("checkpoint '" + path +
                      "': optimizer state is damaged: " + first_line(e.what()));
    }
  }
  if (restore_rng) {
    guarded(path, [&] {
      torch::serialize::InputArchive rng;
      if (archive.try_read("rng", rng)) restore_rng_states(rng, path);
    });
  }
  if (state) *state = loaded_state;
  return {path, config_yaml};
}

namespace {

// The checkpoints a resume tries, in order: the one `latest` names, then the others newest first.
std::vector<std::string> resume_candidates(const fs::path& dir) {
  std::vector<std::string> candidates;
  if (fs::exists(dir / "latest")) {
    fs::path target = dir / read_pointer(dir / "latest");
    if (fs::is_regular_file(target))
      candidates.push_back(target.string());
    else
      warn_missing_latest(dir, target);
  }
  for (const auto& file : list_checkpoints(dir.string()))
    if (std::find(candidates.begin(), candidates.end(), file) == candidates.end())
      candidates.push_back(file);
  return candidates;
}

}  // namespace

std::optional<LoadedCheckpoint> resume_latest(const std::string& run_dir, torch::nn::Module& model,
                                              torch::optim::Optimizer* optimizer,
                                              TrainState* state) {
  fs::path dir = checkpoints_of(run_dir);
  const std::vector<std::string> candidates = resume_candidates(dir);
  if (candidates.empty()) return std::nullopt;
  std::string failures;
  for (const auto& file : candidates) {
    try {
      return load_checkpoint(file, model, optimizer, state);
    } catch (const TokenizerMismatch&) {
      throw;  // every older checkpoint of the run shares the tokenizer
    } catch (const CheckpointMismatch&) {
      throw;  // and the model: another architecture is not a damaged file
    } catch (const OptimizerMismatch&) {
      throw;  // and the optimizer
    } catch (const std::exception& e) {
      // Any failure (a damaged archive included) falls back to the previous checkpoint.
      const bool user = dynamic_cast<const UserError*>(&e) != nullptr;
      const std::string why = user ? std::string(e.what()) : first_line(e.what());
      std::cerr << "warning: skipping checkpoint: " << why << "\n";
      failures += "\n  " + why;
    }
  }
  throw UserError("no loadable checkpoint in '" + dir.string() + "':" + failures);
}

std::map<std::string, torch::Tensor> read_checkpoint_model_state(const std::string& path,
                                                                 TrainState* state) {
  auto archive = open_archive(path, torch::Device(torch::kCPU));
  return guarded(path, [&] {
    std::map<std::string, std::string> hashes;
    torch::serialize::InputArchive meta;
    if (archive.try_read("meta", meta)) {
      hashes = recorded_hashes(meta, "tensor_hashes");
      if (state) *state = read_meta(meta, nullptr);
    } else if (state) {
      throw UserError("checkpoint '" + path + "' has no 'meta' section");
    }
    StateDict weights = read_model_tensors(archive, path);
    check_tensor_hashes(path, hashes, named(weights), "model");
    return weights;
  });
}

TrainState read_checkpoint_state(const std::string& path, std::string* config_yaml) {
  auto archive = open_archive(path, torch::Device(torch::kCPU));
  return guarded(path, [&] {
    auto meta = sub_archive(archive, "meta", path);
    return read_meta(meta, config_yaml);
  });
}

namespace {

// resume_per_config's refusal of a checkpoint that does not fit the model `config` makes: one
// line naming the first changed setting (or the first tensor), and `report_file` when one was
// written.
UserError resume_refusal(const std::string& run_dir, const std::string& checkpoint,
                         const std::vector<std::string>& changes, const LoadReport* report,
                         const std::string& report_file) {
  std::string what;
  if (!changes.empty()) {
    what = "its checkpoint " + fs::path(checkpoint).filename().string() +
           " was made with another model (" + first_model_change(changes) + ")";
  } else {
    what = "its checkpoint " + fs::path(checkpoint).filename().string() +
           " does not fit the model: " + (report ? report->headline() : "");
  }
  return UserError("cannot resume run.dir=" + run_dir + ": " + what +
                   "; resume with the run's own model settings (drop the overrides that change "
                   "them), or train a new run.dir with init_from=" +
                   run_dir + " to start from its weights" +
                   (report_file.empty() ? "" : " (full report: " + report_file + ")"));
}

std::string must_without_checkpoint(const std::string& run_dir) {
  return "run.resume=must but " + run_dir + " has no checkpoint";
}

}  // namespace

std::optional<LoadedCheckpoint> resume_per_config(const YAML::Node& config,
                                                  const std::string& run_dir,
                                                  torch::nn::Module& model,
                                                  torch::optim::Optimizer* optimizer,
                                                  TrainState* state) {
  const std::string resume = run_options(config).run.resume;
  if (resume == "never") return std::nullopt;
  // One line for the terminal; the full story in the run's weight_mismatch.txt.
  auto refuse = [&](const std::string& checkpoint, const std::string& checkpoint_config,
                    const LoadReport* report) {
    const std::vector<std::string> changes = model_config_changes(checkpoint_config, config);
    const std::string file = write_mismatch_report(run_dir, checkpoint, changes, report);
    return resume_refusal(run_dir, checkpoint, changes, report, file);
  };
  std::optional<LoadedCheckpoint> latest;
  try {
    latest = resume_latest(run_dir, model, optimizer, state);
  } catch (const CheckpointMismatch& e) {
    throw refuse(e.path(), e.config_yaml(), &e.report());
  }
  check_user(latest.has_value() || resume != "must", must_without_checkpoint(run_dir));
  if (latest && !model_config_changes(latest->config_yaml, config).empty())
    throw refuse(latest->path, latest->config_yaml, nullptr);
  return latest;
}

std::optional<ResumePlan> plan_resume(const YAML::Node& config, const std::string& run_dir) {
  const std::string resume = run_options(config).run.resume;
  if (resume == "never") return std::nullopt;
  const fs::path dir = checkpoints_of(run_dir);
  const std::vector<std::string> candidates = resume_candidates(dir);
  check_user(!candidates.empty() || resume != "must", must_without_checkpoint(run_dir));
  if (candidates.empty()) return std::nullopt;
  std::string failures;
  for (const std::string& path : candidates) {
    std::string config_yaml;
    TrainState state;
    try {
      state = read_checkpoint_state(path, &config_yaml);
    } catch (const std::exception& e) {
      // A damaged file: resume would skip it and try the next one.
      failures += "\n  " + first_line(e.what());
      continue;
    }
    const std::vector<std::string> changes = model_config_changes(config_yaml, config);
    if (!changes.empty()) throw resume_refusal(run_dir, path, changes, nullptr, "");
    return ResumePlan{path, state};
  }
  throw UserError("no loadable checkpoint in '" + dir.string() + "':" + failures);
}

CheckpointMismatch::CheckpointMismatch(std::string path, std::string config_yaml, LoadReport report)
    : UserError("checkpoint '" + path + "' does not fit the model: " + report.headline()),
      path_(std::move(path)),
      config_yaml_(std::move(config_yaml)),
      report_(std::move(report)) {}

namespace {

// Leaves of `node` under `prefix` ("model.d_model" -> node), maps only.
void collect_leaves(const YAML::Node& node, const std::string& prefix,
                    std::map<std::string, YAML::Node>& out) {
  if (node.IsMap()) {
    for (const auto& item : node)
      collect_leaves(item.second, prefix + "." + item.first.as<std::string>(), out);
  } else {
    out[prefix] = node;
  }
}

// Config group `group` ("model" or "attention") without its kernel choices, which the same
// weights run under either way: attention.sparse_compute, model.attention_backend, and the
// sparse_compute of each mapping in a hybrid stack's model.attention_per_layer.
YAML::Node without_kernel_choices(const YAML::Node& node, const std::string& group) {
  if (!node.IsMap()) return node;
  YAML::Node copy = YAML::Clone(node);
  if (group == "attention") copy.remove("sparse_compute");
  if (group != "model") return copy;
  copy.remove("attention_backend");
  YAML::Node layers = config::child_node(copy, "attention_per_layer");
  if (layers.IsSequence())
    for (size_t i = 0; i < layers.size(); ++i)
      if (layers[i].IsMap()) layers[i].remove("sparse_compute");
  return copy;
}

bool same_value(const YAML::Node& a, const YAML::Node& b) {
  if (a.IsScalar() && b.IsScalar()) {
    if (a.Scalar() == b.Scalar()) return true;
    try {  // 64 and 64.0, 1e-5 and 1.0e-05
      return a.as<double>() == b.as<double>();
    } catch (const YAML::Exception&) {
      return false;
    }
  }
  if (a.IsNull() && b.IsNull()) return true;
  return YAML::Dump(a) == YAML::Dump(b);
}

std::string show(const YAML::Node& node) {
  if (node.IsNull()) return "null";
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

}  // namespace

std::vector<std::string> model_config_changes(const std::string& checkpoint_config_yaml,
                                              const YAML::Node& config) {
  std::vector<std::string> changes;
  if (checkpoint_config_yaml.empty()) return changes;
  YAML::Node saved;
  try {
    // Keys that moved since the checkpoint was written are compared at their new place.
    saved = config::parse_saved_config(checkpoint_config_yaml, "the checkpoint's config");
  } catch (const std::exception&) {
    return changes;  // an unreadable record names nothing; the tensors still decide
  }
  for (const char* group : {"model", "attention"}) {
    if (!saved.IsMap() || !saved[group] || !config.IsMap() || !config[group]) continue;
    std::map<std::string, YAML::Node> before, after;
    collect_leaves(without_kernel_choices(saved[group], group), group, before);
    collect_leaves(without_kernel_choices(config[group], group), group, after);
    for (const auto& [key, old_value] : before) {
      auto now = after.find(key);
      if (now == after.end() || same_value(old_value, now->second)) continue;
      changes.push_back(key + ": " + show(old_value) + " -> " + show(now->second));
    }
  }
  return changes;
}

std::string first_model_change(const std::vector<std::string>& changes) {
  if (changes.empty()) return "";
  return changes.front() +
         (changes.size() > 1 ? ", and " + std::to_string(changes.size() - 1) + " more" : "");
}

std::string write_mismatch_report(const std::string& run_dir, const std::string& checkpoint,
                                  const std::vector<std::string>& changes,
                                  const LoadReport* report) {
  std::ostringstream text;
  text << "checkpoint: " << checkpoint << "\n";
  text << "settings that differ (checkpoint -> this config) (" << changes.size() << "):\n";
  for (const auto& change : changes) text << "  " << change << "\n";
  if (report) text << report->full_list();
  const fs::path file = fs::path(run_dir) / "weight_mismatch.txt";
  try {
    write_file_atomic(file.string(), text.str());
  } catch (const std::exception&) {
    return "";
  }
  return file.string();
}

}  // namespace attnlab
