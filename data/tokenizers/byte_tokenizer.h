// ByteTokenizer (`tokenizer.name: byte`): ids 0..255 are the UTF-8 bytes themselves, followed by
// BOS=256, EOS=257, PAD=258, MASK=259 (vocab 260). No training, no files, exact round trip.
#pragma once

#include "data/tokenizers/tokenizer.h"

namespace attnlab {

class ByteTokenizer : public Tokenizer {
 public:
  ByteTokenizer();
  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return 260; }
  std::string fingerprint() const override { return "byte-v1"; }
};

}  // namespace attnlab
