// BpeTokenizer (`tokenizer.name: bpe`): a SentencePiece BPE model trained on the training split
// with `tokenizer.vocab_size` pieces, byte fallback (so any UTF-8 round-trips) and no text
// normalisation. Ids: 0 <unk> (never produced thanks to byte fallback), 1 BOS <s>, 2 EOS </s>,
// 3 PAD <pad>, 4 MASK <mask>, then 256 byte pieces, then learned merges.
#pragma once

#include <filesystem>
#include <memory>

#include "data/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace attnlab {

struct BpeTrainOptions {
  int64_t vocab_size = 4096;
  int64_t threads = 1;
};

class BpeTokenizer : public Tokenizer {
 public:
  // Loads a serialized SentencePiece model (the bytes of a .model file); `origin` names it in
  // error messages.
  BpeTokenizer(const std::string& serialized_model, const std::string& origin);
  ~BpeTokenizer() override;

  // Trains a model on `documents` (each split into lines, the unit SentencePiece trains on).
  static std::string train(const std::vector<std::string>& documents,
                           const BpeTrainOptions& options);

  // The cached model for these documents and options under `dir` (bpe-<hash>.model), trained
  // and written atomically on first use.
  static std::unique_ptr<BpeTokenizer> train_or_load(const std::vector<std::string>& documents,
                                                     const BpeTrainOptions& options,
                                                     const std::filesystem::path& dir);

  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override;
  std::string fingerprint() const override { return fingerprint_; }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::string fingerprint_;
};

}  // namespace attnlab
