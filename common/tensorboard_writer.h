// TensorBoardWriter: writes TensorBoard event files (events.out.tfevents.*) from C++ without
// TensorFlow, LibTorch or a protobuf library, so the trainer's curves, notes and hyperparameters
// show up in `tensorboard --logdir runs/` next to the metrics.jsonl it already writes.
//
// An event file is a sequence of TFRecords, each holding one serialized tensorboard.Event proto:
//   uint64 length | uint32 masked_crc32c(length) | bytes event | uint32 masked_crc32c(event)
// (little-endian; mask = ((crc >> 15) | (crc << 17)) + 0xa282ead8). The handful of messages used
// (Event, Summary, SummaryMetadata, TensorProto, SessionLog and the HParams plugin's
// HParamsPluginData) are encoded by hand in tensorboard_writer.cpp; field numbers come from
// tensorboard/compat/proto/{event,summary,tensor}.proto and tensorboard/plugins/hparams/*.proto.
//
// Not thread-safe: one writer per run directory, used from one thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace attnlab {

// One hyperparameter value as the HParams plugin stores it (google.protobuf.Value): a string, a
// number (any arithmetic type, stored as double) or a bool. The constructors are implicit so a
// map reads {{"lr", 3e-4}, {"optimizer", "adamw"}, {"tied_embeddings", true}}.
class HParamValue {
 public:
  enum class Kind { kString, kNumber, kBool };

  HParamValue(const char* text) : kind_(Kind::kString), string_(text) {}
  HParamValue(std::string text) : kind_(Kind::kString), string_(std::move(text)) {}
  HParamValue(bool flag) : kind_(Kind::kBool), bool_(flag) {}
  template <typename T,
            std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>, int> = 0>
  HParamValue(T number) : kind_(Kind::kNumber), number_(static_cast<double>(number)) {}

  Kind kind() const { return kind_; }
  const std::string& string_value() const { return string_; }
  double number_value() const { return number_; }
  bool bool_value() const { return bool_; }

 private:
  Kind kind_;
  std::string string_;
  double number_ = 0.0;
  bool bool_ = false;
};

// tensorboard.hparams.Status: how a training session ended (shown in the HParams tab).
enum class HParamsStatus { kUnknown = 0, kSuccess = 1, kFailure = 2, kRunning = 3 };

class TensorBoardWriter {
 public:
  // Creates log_dir (and parents) if needed and a new file
  // events.out.tfevents.<unix seconds>.<hostname>.<pid> in it (".1", ".2", ... appended when that
  // name exists), whose first record is Event{wall_time, file_version: "brain.Event:2"}. Every
  // run, including a resumed one, gets its own file; TensorBoard reads them in name order.
  // Throws UserError naming the path when the directory or the file cannot be created.
  explicit TensorBoardWriter(const std::string& log_dir);
  ~TensorBoardWriter();  // flushes and closes; never throws (a failed final flush is dropped)
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // A scalar curve point: Summary.Value.simple_value, stored as float32 (TensorBoard's format).
  void add_scalar(const std::string& tag, double value, int64_t step);
  // Markdown text for the Text tab: a DT_STRING scalar tensor with plugin_name "text". Invalid
  // UTF-8 (a byte-level sample cut inside a character) is replaced by U+FFFD.
  void add_text(const std::string& tag, const std::string& text, int64_t step);
  // SessionLog{status: START} at `step`: call right after opening the writer in every run, fresh
  // (step 0) or resumed (the first step it will log). TensorBoard's dashboards take a run's first
  // START as its beginning and each later one as a restart, dropping every event read before it
  // (earlier files in log_dir included) whose step is >= `step`, so what a crashed run logged past
  // its last checkpoint does not double up with the resumed curve. (TensorBoard's Rust data
  // server ignores SessionLog and instead drops a tag's points when its step goes backwards.)
  void add_session_start(int64_t step);
  // The HParams tab: writes `_hparams_/experiment` (the hparam names and types and the metric
  // tags, e.g. "val/loss") and `_hparams_/session_start_info` (this run's values), at step 0.
  // Call once per file, before training; TensorBoard keeps the first copy of each per run.
  void add_hparams(const std::map<std::string, HParamValue>& hparams,
                   const std::vector<std::string>& metric_tags);
  // `_hparams_/session_end_info` with `status`: call once, when the run ends.
  void add_hparams_end(HParamsStatus status);

  // Writes the buffered records to the file and fflush()es it. Records are buffered whole and
  // handed to the file whole, so a reader never sees half a record except while a write is in
  // progress (TensorBoard treats a short trailing record as not yet written).
  // Throws UserError naming the path on a write failure.
  void flush();
  std::string path() const { return path_; }

 private:
  void write_event(const std::string& event);

  std::string path_;
  std::FILE* file_ = nullptr;
  std::string pending_;  // whole TFRecords not yet handed to the file
};

}  // namespace attnlab
