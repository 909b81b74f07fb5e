// BpeTokenizer (`tokenizer.name: bpe`): a SentencePiece BPE model trained on the training split
// with `tokenizer.vocab_size` pieces, byte fallback (so any UTF-8 round-trips) and no text
// normalisation. Ids: 0 <unk> (never produced thanks to byte fallback), 1 BOS <s>, 2 EOS </s>,
// 3 PAD <pad>, 4 MASK <mask>, then 256 byte pieces, then learned merges.
//
// Training and encoding run in process through libsentencepiece (Debian's libsentencepiece-dev).
// Under LibTorch 1.13 its bundled protobuf crashed next to LibTorch's, so training ran `spm_train`
// out of process and encoding was re-implemented; LibTorch 2.x keeps its protobuf private, so the
// library itself is used now. tests/data/tokenizer_test.cpp checks the ids against `spm_encode`.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/tokenizers/tokenizer.h"

namespace attnlab {

struct BpeTrainOptions {
  int64_t vocab_size = 4096;
  int64_t threads = 1;
};

// tokenizer.max_train_bytes (BpeTokenizerOptions): BPE trains on the first training documents
// whose text fits in it (at least one; 0: all), which bounds memory and time on a large corpus.
// 0 when tokenizer.name is not bpe (nothing trains). UserError naming the key for a bad value.
// Defined with the tokenizer table (tokenizer_registry.cpp), for YAML::Node.
template <class ConfigTree>
int64_t tokenizer_max_train_bytes(const ConfigTree& config);

class BpeTokenizer : public Tokenizer {
 public:
  // Loads a serialized SentencePiece model (the bytes of a .model file); `origin` names it in
  // error messages.
  BpeTokenizer(const std::string& serialized_model, const std::string& origin);

  // Trains a model on `documents` (each split into lines, the unit SentencePiece trains on);
  // returns the serialized model. SentencePiece's log goes to a file under `work_dir`, quoted in
  // the error when training fails.
  static std::string train(const std::vector<std::string>& documents,
                           const BpeTrainOptions& options, const std::filesystem::path& work_dir);

  // The cached model for these documents and options under `dir` (bpe-<vocab>-<hash>.model),
  // trained and written atomically on first use, with its content hash in a sidecar
  // (<model>.fnv64). A model whose bytes no longer match the sidecar (edited or damaged) is a
  // UserError naming it; a model without a sidecar (interrupted write, older attnlab) is retrained.
  static std::unique_ptr<BpeTokenizer> train_or_load(const std::vector<std::string>& documents,
                                                     const BpeTrainOptions& options,
                                                     const std::filesystem::path& dir);

  // Encodes pieces of ~64 KB that end before an ASCII space: a piece never spans a space
  // (SentencePiece splits words there, and the model has no dummy prefix), so the ids equal
  // those of one call on the whole text, while long documents (a book in one .txt file) no
  // longer cost SentencePiece gigabytes and superlinear time.
  std::vector<int32_t> encode(const std::string& text) const override;
  std::vector<int32_t> encode_in_pieces(const std::string& text, size_t piece_bytes) const;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  std::string fingerprint() const override { return fingerprint_; }
  ~BpeTokenizer() override;

 private:
  struct Processor;  // sentencepiece::SentencePieceProcessor
  std::unique_ptr<Processor> processor_;
  std::vector<std::string> pieces_;  // id -> decoded text ("" for specials and <unk>)
  std::string fingerprint_;
};

}  // namespace attnlab
