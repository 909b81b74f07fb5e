// Byte-level tokenizer (see byte_tokenizer.h).
#include "data/tokenizers/byte_tokenizer.h"

#include "common/error.h"

namespace attnlab {

ByteTokenizer::ByteTokenizer() { special_ = SpecialTokens{256, 257, 258, 259}; }

std::vector<int32_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  text.reserve(ids.size());
  for (int32_t id : ids) {
    check_user(id >= 0 && id < vocab_size(),
               "byte tokenizer: token id " + std::to_string(id) + " outside [0, 260)");
    if (id < 256) text.push_back(static_cast<char>(id));  // special tokens decode to nothing
  }
  return text;
}

}  // namespace attnlab
