// Minimal protobuf wire-format reader for SentencePiece model files; see sentencepiece_model.h.
// ModelProto: field 1 = repeated SentencePiece {1: string piece, 2: float score, 3: enum type}.
#include "data/sentencepiece_model.h"

#include <cstring>

#include "common/error.h"

namespace attnlab {

namespace {

// A bounds-checked cursor over one protobuf message.
class WireReader {
 public:
  WireReader(const char* data, size_t size, const std::string& origin)
      : pos_(data), end_(data + size), origin_(origin) {}

  bool done() const { return pos_ >= end_; }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      const auto byte = static_cast<uint8_t>(*pos_++);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail("varint longer than 10 bytes");
  }

  std::string bytes() {
    const uint64_t size = varint();
    need(size);
    std::string out(pos_, static_cast<size_t>(size));
    pos_ += size;
    return out;
  }

  float fixed32_float() {
    need(4);
    float value;
    std::memcpy(&value, pos_, 4);  // little-endian on every platform LibTorch supports
    pos_ += 4;
    return value;
  }

  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0:
        varint();
        return;
      case 1:
        need(8), pos_ += 8;
        return;
      case 2:
        bytes();
        return;
      case 5:
        need(4), pos_ += 4;
        return;
      default:
        fail("unsupported wire type " + std::to_string(wire_type));
    }
  }

 private:
  void need(uint64_t count) {
    if (static_cast<uint64_t>(end_ - pos_) < count) fail("truncated message");
  }
  [[noreturn]] void fail(const std::string& what) {
    throw UserError("SentencePiece model " + origin_ + " is malformed: " + what +
                    " (expected a .model file written by spm_train)");
  }
  const char* pos_;
  const char* end_;
  const std::string& origin_;
};

SentencePiece parse_piece(const std::string& message, const std::string& origin) {
  SentencePiece piece;
  WireReader reader(message.data(), message.size(), origin);
  while (!reader.done()) {
    const uint64_t key = reader.varint();
    const auto field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 2) {
      piece.piece = reader.bytes();
    } else if (field == 2 && wire == 5) {
      piece.score = reader.fixed32_float();
    } else if (field == 3 && wire == 0) {
      piece.type = static_cast<PieceType>(reader.varint());
    } else {
      reader.skip(wire);
    }
  }
  return piece;
}

}  // namespace

std::vector<SentencePiece> parse_sentencepiece_model(const std::string& serialized,
                                                     const std::string& origin) {
  std::vector<SentencePiece> pieces;
  WireReader reader(serialized.data(), serialized.size(), origin);
  while (!reader.done()) {
    const uint64_t key = reader.varint();
    const auto field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 2) {
      pieces.push_back(parse_piece(reader.bytes(), origin));
    } else {
      reader.skip(wire);
    }
  }
  check_user(!pieces.empty(), "SentencePiece model " + origin + " has no pieces");
  return pieces;
}

}  // namespace attnlab
