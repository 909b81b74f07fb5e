// Reads the vocabulary of a SentencePiece `.model` file (a serialized `ModelProto`) without
// libsentencepiece: Debian's libsentencepiece bundles its own protobuf runtime, which crashes in
// a process that also loads LibTorch's libprotobuf. Only the fields attnlab needs are decoded
// (the repeated `pieces` with their piece text, score and type); everything else is skipped by
// wire type, so newer model files still load.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

// SentencePiece's ModelProto.SentencePiece.Type values.
enum class PieceType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct SentencePiece {
  std::string piece;
  float score = 0.0f;
  PieceType type = PieceType::kNormal;
};

// Parses the pieces of a serialized model (the bytes of a .model file), in id order. `origin`
// names the file in errors; a malformed message throws UserError.
std::vector<SentencePiece> parse_sentencepiece_model(const std::string& serialized,
                                                     const std::string& origin);

}  // namespace attnlab
