// TensorBoard event-file writer (see tensorboard_writer.h): hand-rolled protobuf encoding of the
// few messages TensorBoard reads, TFRecord framing with CRC32C (Castagnoli) checksums, and the
// HParams plugin's summaries. No protobuf library: each message is a few tagged fields, and
// writing them by hand keeps common/ free of a dependency the trainer otherwise does not need.
//
// Protobuf wire format used here: a field is key = (field_number << 3 | wire_type) as a varint,
// then the value: wire type 0 varint (int64, enum, bool), 1 fixed64 (double), 2 length-delimited
// (string, bytes, sub-message: varint length + bytes), 5 fixed32 (float). Little-endian.
#include "common/tensorboard_writer.h"

#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "common/error.h"

namespace attnlab {
namespace {
namespace fs = std::filesystem;

// ---- protobuf encoding -------------------------------------------------------------------------

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_key(std::string& out, uint32_t field, WireType type) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | type);
}

// int64 and enum fields: negative values are sign-extended to 64 bits (10 bytes), as protobuf does.
void put_int(std::string& out, uint32_t field, int64_t value) {
  put_key(out, field, kVarint);
  put_varint(out, static_cast<uint64_t>(value));
}

void put_fixed_le(std::string& out, uint64_t bits, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

void put_double(std::string& out, uint32_t field, double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(out, field, kFixed64);
  put_fixed_le(out, bits, 8);
}

void put_float(std::string& out, uint32_t field, float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(out, field, kFixed32);
  put_fixed_le(out, bits, 4);
}

// string, bytes and embedded messages (already serialized) alike.
void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// ---- the messages ------------------------------------------------------------------------------
// Field numbers: tensorboard/compat/proto/event.proto (Event, SessionLog), summary.proto (Summary,
// Summary.Value, SummaryMetadata, SummaryMetadata.PluginData), tensor.proto / tensor_shape.proto /
// types.proto (TensorProto, TensorShapeProto, DT_FLOAT = 1, DT_STRING = 7),
// tensorboard/plugins/hparams/plugin_data.proto (HParamsPluginData, SessionStartInfo,
// SessionEndInfo), api.proto (Experiment, HParamInfo, MetricInfo, MetricName, DataType) and
// google/protobuf/struct.proto (Value).

constexpr int kDtFloat = 1;
constexpr int kDtString = 7;

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Event{wall_time = 1, step = 2, then one of file_version = 3, summary = 5, session_log = 7}.
std::string event_header(int64_t step) {
  std::string event;
  put_double(event, 1, now_seconds());
  if (step != 0) put_int(event, 2, step);
  return event;
}

// SummaryMetadata{plugin_data = 1: PluginData{plugin_name = 1, content = 2}}.
std::string plugin_metadata(const std::string& plugin_name, const std::string& content) {
  std::string plugin_data;
  put_bytes(plugin_data, 1, plugin_name);
  if (!content.empty()) put_bytes(plugin_data, 2, content);
  std::string metadata;
  put_bytes(metadata, 1, plugin_data);
  return metadata;
}

// An Event holding Summary{value = 1: [value]}.
std::string summary_event(const std::string& summary_value, int64_t step) {
  std::string summary;
  put_bytes(summary, 1, summary_value);
  std::string event = event_header(step);
  put_bytes(event, 5, summary);
  return event;
}

// A plugin summary value: Summary.Value{tag = 1, tensor = 8, metadata = 9}. Fields are written in
// field-number order throughout, as protobuf's own serializers do.
std::string plugin_value(const std::string& tag, const std::string& metadata,
                         const std::string& tensor) {
  std::string value;
  put_bytes(value, 1, tag);
  put_bytes(value, 8, tensor);
  put_bytes(value, 9, metadata);
  return value;
}

// google.protobuf.Value{number_value = 2 | string_value = 3 | bool_value = 4}.
std::string struct_value(const HParamValue& value) {
  std::string out;
  switch (value.kind()) {
    case HParamValue::Kind::kNumber:
      put_double(out, 2, value.number_value());
      break;
    case HParamValue::Kind::kString:
      put_bytes(out, 3, value.string_value());
      break;
    case HParamValue::Kind::kBool:
      put_int(out, 4, value.bool_value() ? 1 : 0);
      break;
  }
  return out;
}

// tensorboard.hparams.DataType: DATA_TYPE_STRING = 1, DATA_TYPE_BOOL = 2, DATA_TYPE_FLOAT64 = 3.
int hparam_data_type(const HParamValue& value) {
  switch (value.kind()) {
    case HParamValue::Kind::kString:
      return 1;
    case HParamValue::Kind::kBool:
      return 2;
    case HParamValue::Kind::kNumber:
      return 3;
  }
  return 0;
}

// An `_hparams_/...` summary event: metadata with plugin_name "hparams" whose content is
// HParamsPluginData{version = 1: 0 (the default, left out as proto3 does), <data_field> = data},
// and the null tensor TensorBoard's own hparams writer attaches (DT_FLOAT, shape [0]).
std::string hparams_event(const std::string& tag, uint32_t data_field, const std::string& data) {
  std::string plugin_data;
  put_bytes(plugin_data, data_field, data);
  std::string dim;  // TensorShapeProto.Dim{size = 1}: 0, left out
  std::string shape;
  put_bytes(shape, 2, dim);  // TensorShapeProto{dim = 2}
  std::string tensor;
  put_int(tensor, 1, kDtFloat);  // TensorProto{dtype = 1, tensor_shape = 2}
  put_bytes(tensor, 2, shape);
  return summary_event(plugin_value(tag, plugin_metadata("hparams", plugin_data), tensor), 0);
}

// ---- TFRecord framing --------------------------------------------------------------------------

// CRC32C (Castagnoli, reflected polynomial 0x82f63b78), one table lookup per byte.
const std::array<uint32_t, 256>& crc32c_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t crc = i;
      for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? 0x82f63b78u : 0u);
      t[i] = crc;
    }
    return t;
  }();
  return table;
}

uint32_t crc32c(const char* data, size_t size) {
  const auto& table = crc32c_table();
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) {
    crc = table[(crc ^ static_cast<uint8_t>(data[i])) & 0xff] ^ (crc >> 8);
  }
  return crc ^ 0xffffffffu;
}

// TFRecord's masked CRC: a CRC of data that itself holds CRCs is otherwise prone to collisions.
uint32_t masked_crc32c(const char* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

// length (uint64 LE) | masked CRC of those 8 bytes | data | masked CRC of data.
void append_record(std::string& out, const std::string& data) {
  std::string length;
  put_fixed_le(length, data.size(), 8);
  out += length;
  put_fixed_le(out, masked_crc32c(length.data(), length.size()), 4);
  out += data;
  put_fixed_le(out, masked_crc32c(data.data(), data.size()), 4);
}

// Records are handed to the file once this much is pending (and on every flush()).
constexpr size_t kFlushBytes = 64 * 1024;

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::string& log_dir) {
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  check_user(!ec && fs::is_directory(log_dir), "tensorboard: cannot create log directory '" +
                                                   log_dir + "'" +
                                                   (ec ? ": " + ec.message() : std::string()));
  const auto seconds = static_cast<long long>(now_seconds());
  const std::string base =
      (fs::path(log_dir) / ("events.out.tfevents." + std::to_string(seconds) + "." + host_name() +
                            "." + std::to_string(static_cast<long long>(getpid()))))
          .string();
  // "x": fail rather than truncate when the name exists (two writers in one second and process).
  for (int suffix = 0; file_ == nullptr; ++suffix) {
    path_ = suffix == 0 ? base : base + "." + std::to_string(suffix);
    file_ = std::fopen(path_.c_str(), "wbx");
    const int error = errno;
    if (file_ == nullptr && (error != EEXIST || suffix >= 1000)) {
      throw UserError("tensorboard: cannot create event file '" + path_ +
                      "': " + std::strerror(error));
    }
  }
  std::string event = event_header(0);
  put_bytes(event, 3, "brain.Event:2");
  write_event(event);
  try {
    flush();
  } catch (const UserError&) {
    std::fclose(file_);  // the destructor does not run for a constructor that throws
    throw;
  }
}

TensorBoardWriter::~TensorBoardWriter() {
  try {
    flush();
  } catch (const UserError&) {
    // A destructor must not throw; the failure was the caller's to see at its last flush().
  }
  std::fclose(file_);
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  std::string summary_value;  // Summary.Value{tag = 1, simple_value = 2}
  put_bytes(summary_value, 1, tag);
  put_float(summary_value, 2, static_cast<float>(value));
  write_event(summary_event(summary_value, step));
}

namespace {

// `text` with every invalid UTF-8 sequence replaced by U+FFFD: TensorBoard decodes text as UTF-8,
// and a sample of a byte-level model may stop inside a character.
std::string valid_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = bytes[i];
    size_t length = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xe  ? 3
                    : (c >> 3) == 0x1e ? 4
                                       : 0;
    bool ok = length > 0 && i + length <= n;
    for (size_t k = 1; ok && k < length; ++k) ok = (bytes[i + k] & 0xc0) == 0x80;
    if (ok && length > 1) {  // no overlong forms, surrogates or code points above U+10FFFF
      uint32_t cp = c & (0x7f >> length);
      for (size_t k = 1; k < length; ++k) cp = (cp << 6) | (bytes[i + k] & 0x3f);
      static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[length] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    }
    if (ok) {
      out.append(text, i, length);
      i += length;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

}  // namespace

void TensorBoardWriter::add_text(const std::string& tag, const std::string& text, int64_t step) {
  std::string tensor;  // TensorProto{dtype = 1, tensor_shape = 2 (scalar: empty), string_val = 8}
  put_int(tensor, 1, kDtString);
  put_bytes(tensor, 2, "");
  put_bytes(tensor, 8, valid_utf8(text));
  // The text plugin's content is TextPluginData{version = 0}, which serializes to nothing.
  write_event(summary_event(plugin_value(tag, plugin_metadata("text", ""), tensor), step));
}

void TensorBoardWriter::add_session_start(int64_t step) {
  std::string session_log;  // SessionLog{status = 1: START = 1}
  put_int(session_log, 1, 1);
  std::string event = event_header(step);
  put_bytes(event, 7, session_log);
  write_event(event);
}

void TensorBoardWriter::add_hparams(const std::map<std::string, HParamValue>& hparams,
                                    const std::vector<std::string>& metric_tags) {
  // Experiment{hparam_infos = 4: HParamInfo{name = 1, type = 4},
  //            metric_infos = 5: MetricInfo{name = 1: MetricName{tag = 2}}}
  std::string experiment;
  for (const auto& [name, value] : hparams) {
    std::string info;
    put_bytes(info, 1, name);
    put_int(info, 4, hparam_data_type(value));
    put_bytes(experiment, 4, info);
  }
  for (const auto& tag : metric_tags) {
    std::string metric_name;
    put_bytes(metric_name, 2, tag);
    std::string info;
    put_bytes(info, 1, metric_name);
    put_bytes(experiment, 5, info);
  }
  write_event(hparams_event("_hparams_/experiment", 2, experiment));

  // SessionStartInfo{hparams = 1: map<string, Value> entries {key = 1, value = 2},
  //                  start_time_secs = 5}
  std::string start_info;
  for (const auto& [name, value] : hparams) {
    std::string entry;
    put_bytes(entry, 1, name);
    put_bytes(entry, 2, struct_value(value));
    put_bytes(start_info, 1, entry);
  }
  put_double(start_info, 5, now_seconds());
  write_event(hparams_event("_hparams_/session_start_info", 3, start_info));
}

void TensorBoardWriter::add_hparams_end(HParamsStatus status) {
  std::string end_info;  // SessionEndInfo{status = 1, end_time_secs = 2}
  put_int(end_info, 1, static_cast<int>(status));
  put_double(end_info, 2, now_seconds());
  write_event(hparams_event("_hparams_/session_end_info", 4, end_info));
}

void TensorBoardWriter::write_event(const std::string& event) {
  append_record(pending_, event);
  if (pending_.size() >= kFlushBytes) flush();
}

void TensorBoardWriter::flush() {
  if (!pending_.empty()) {
    const size_t written = std::fwrite(pending_.data(), 1, pending_.size(), file_);
    // Keep what did not reach the file, so a later flush can finish the record it cut.
    pending_.erase(0, written);
  }
  if (!pending_.empty() || std::fflush(file_) != 0) {
    throw UserError("tensorboard: cannot write event file '" + path_ +
                    "': " + std::strerror(errno));
  }
}

}  // namespace attnlab
