// libattnlab_sentencepiece.so: the only code that links libsentencepiece. It implements
// data/tokenizers/sentencepiece_api.h over the library's trainer and processor;
// data/tokenizers/sentencepiece_api.cpp loads it with RTLD_LOCAL | RTLD_DEEPBIND so its symbols
// never meet LibTorch's (see that header).
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "data/tokenizers/sentencepiece_api.h"

namespace {

// The training sentences: every non-empty line of every document.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(const std::vector<std::string>& documents) : documents_(documents) {
    advance();
  }
  bool done() const override { return doc_ >= documents_.size(); }
  void Next() override { advance(); }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void advance() {
    while (doc_ < documents_.size()) {
      const std::string& doc = documents_[doc_];
      if (pos_ >= doc.size()) {
        ++doc_;
        pos_ = 0;
        continue;
      }
      size_t end = doc.find('\n', pos_);
      if (end == std::string::npos) end = doc.size();
      line_.assign(doc, pos_, end - pos_);
      pos_ = end + 1;
      if (!line_.empty()) return;
    }
  }
  const std::vector<std::string>& documents_;
  size_t doc_ = 0, pos_ = 0;
  std::string line_;
};

std::string train(const std::string& args, const std::vector<std::string>& documents,
                  std::string* model) {
  LineIterator lines(documents);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, model);
  return status.ok() ? "" : status.ToString();
}

void* load(const std::string& model, std::string* error) {
  auto* processor = new sentencepiece::SentencePieceProcessor();
  const auto status = processor->LoadFromSerializedProto(model);
  if (status.ok()) return processor;
  *error = status.ToString();
  delete processor;
  return nullptr;
}

sentencepiece::SentencePieceProcessor& of(void* processor) {
  return *static_cast<sentencepiece::SentencePieceProcessor*>(processor);
}

void release(void* processor) { delete &of(processor); }

int piece_size(void* processor) { return of(processor).GetPieceSize(); }

void piece(void* processor, int id, std::string* text, float* score, int* kind) {
  const auto& sp = of(processor);
  *text = sp.IdToPiece(id);
  *score = sp.GetScore(id);
  *kind = sp.IsControl(id) ? 1 : sp.IsUnknown(id) ? 2 : sp.IsByte(id) ? 3 : sp.IsUnused(id) ? 4 : 0;
}

std::string encode(void* processor, const std::string& text, std::vector<int>* ids) {
  const auto status = of(processor).Encode(text, ids);
  return status.ok() ? "" : status.ToString();
}

const attnlab::SentencePieceApi kApi = {train, load, release, piece_size, piece, encode};

}  // namespace

extern "C" __attribute__((visibility("default"))) const attnlab::SentencePieceApi*
attnlab_sentencepiece_api() {
  return &kApi;
}
