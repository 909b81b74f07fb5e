// Classification examples as model inputs: each text is tokenized, truncated and prefixed with
// the tokenizer's BOS (the [CLS] position that `task.pooling=cls` reads), and batches are padded
// to their longest member with PAD plus a key-padding mask, so short e-mails cost no attention
// over padding. Training batches come from ExampleSampler: epochs over the training split, each
// in a fresh seeded order, with a position that checkpoints restore exactly.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "data/corpora/labelled_dataset.h"
#include "data/tokenizers/tokenizer.h"
#include "modules/model_output.h"

namespace attnlab {

struct EncodedExamples {
  std::vector<std::vector<int32_t>> tokens;  // BOS + at most seq_len - 1 text tokens
  std::vector<int64_t> labels;
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

// `max_text_bytes` caps the text before tokenizing (0 = no cap; the token cut at seq_len is what
// truncates, this only saves tokenizer time on long messages).
EncodedExamples encode_examples(const std::vector<LabelledExample>& examples,
                                const Tokenizer& tokenizer, int64_t seq_len,
                                int64_t max_text_bytes);

// Batch of the examples at `indices`: input [B, T] (T = longest member, padded with `pad`),
// key_padding [B, T] bool (true = real token), labels [B]. target/loss_mask stay undefined.
Batch make_example_batch(const EncodedExamples& examples, const std::vector<int64_t>& indices,
                         int32_t pad);

// Consecutive batches of `batch_size` over all examples in order (the last one may be smaller),
// for evaluation.
std::vector<Batch> ordered_batches(const EncodedExamples& examples, int64_t batch_size,
                                   int32_t pad);

// Epoch-shuffled example indices: epoch e visits every example once in the order of a
// Fisher-Yates shuffle driven by mt19937_64(seed, e) (fully specified by the C++ standard, so the
// order is the same on every platform). A batch may span two epochs. Data parallel: each step
// draws one global batch of batch_size x world_size examples and rank r takes the r-th slice, so
// the ranks together see what one process with world_size times the batch would.
class ExampleSampler {
 public:
  ExampleSampler(int64_t num_examples, int64_t batch_size, uint64_t seed, int rank = 0,
                 int world_size = 1);
  std::vector<int64_t> next();
  // "examples v1 n=.. seed=.. drawn=.."; load_state accepts only a state of the same n and seed.
  std::string state() const;
  void load_state(const std::string& state);
  int64_t drawn() const { return drawn_; }  // examples handed out to all ranks so far

 private:
  const std::vector<int64_t>& order(int64_t epoch);
  int64_t n_, batch_size_;
  uint64_t seed_;
  int rank_, world_size_;
  int64_t drawn_ = 0;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> order_;
};

}  // namespace attnlab
