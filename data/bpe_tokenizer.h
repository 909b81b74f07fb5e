// BpeTokenizer (`tokenizer.name: bpe`): a SentencePiece BPE model trained on the training split
// with `tokenizer.vocab_size` pieces, byte fallback (so any UTF-8 round-trips) and no text
// normalisation. Ids: 0 <unk> (never produced thanks to byte fallback), 1 BOS <s>, 2 EOS </s>,
// 3 PAD <pad>, 4 MASK <mask>, then 256 byte pieces, then learned merges.
//
// Why not libsentencepiece in process: Debian's libsentencepiece bundles protobuf 3.14, and a
// process that also loads LibTorch's libprotobuf 3.21 crashes before main. So training runs the
// real SentencePiece trainer out of process (`spm_train`, Debian package `sentencepiece`), the
// .model file is read by data/sentencepiece_model.*, and encoding re-implements SentencePiece's
// BPE segmentation (highest-scoring adjacent merge first, leftmost on ties, byte fallback for
// characters outside the vocabulary). tests/data/bpe_tokenizer_test.cpp checks the ids against
// `spm_encode` on real text.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/sentencepiece_model.h"
#include "data/tokenizer.h"

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

  // Trains a model on `documents` (each split into lines, the unit SentencePiece trains on) with
  // spm_train in a scratch folder under `work_dir`; returns the serialized model.
  static std::string train(const std::vector<std::string>& documents,
                           const BpeTrainOptions& options, const std::filesystem::path& work_dir);

  // The cached model for these documents and options under `dir` (bpe-<vocab>-<hash>.model),
  // trained and written atomically on first use.
  static std::unique_ptr<BpeTokenizer> train_or_load(const std::vector<std::string>& documents,
                                                     const BpeTrainOptions& options,
                                                     const std::filesystem::path& dir);

  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  std::string fingerprint() const override { return fingerprint_; }

 private:
  // Appends the ids of one final segment: its piece id, or its bytes' ids (byte fallback).
  void emit_segment(const std::string& segment, std::vector<int32_t>& ids) const;

  std::vector<SentencePiece> pieces_;
  std::unordered_map<std::string, int32_t> mergeable_;  // normal pieces -> id
  int32_t byte_ids_[256];                               // <0xXX> piece ids
  std::string fingerprint_;
};

}  // namespace attnlab
