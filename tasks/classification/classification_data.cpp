// See classification_data.h.
#include "tasks/classification/classification_data.h"

#include <algorithm>
#include <sstream>

#include "common/error.h"

namespace attnlab {

EncodedExamples encode_examples(const std::vector<LabelledExample>& examples,
                                const Tokenizer& tokenizer, int64_t seq_len,
                                int64_t max_text_bytes) {
  check_user(seq_len >= 2,
             "config key 'data.seq_len': a classification input needs >= 2 "
             "positions (BOS + text), got " +
                 std::to_string(seq_len));
  EncodedExamples out;
  for (const auto& example : examples) {
    std::string text = example.text;
    if (max_text_bytes > 0 && text.size() > static_cast<size_t>(max_text_bytes))
      text.resize(static_cast<size_t>(max_text_bytes));  // a cut UTF-8 char is bytes to `byte`
    std::vector<int32_t> ids = tokenizer.encode(text);
    if (ids.size() > static_cast<size_t>(seq_len - 1)) ids.resize(static_cast<size_t>(seq_len - 1));
    ids.insert(ids.begin(), tokenizer.bos());
    out.tokens.push_back(std::move(ids));
    out.labels.push_back(example.label);
  }
  return out;
}

Batch make_example_batch(const EncodedExamples& examples, const std::vector<int64_t>& indices,
                         int32_t pad) {
  TORCH_CHECK(!indices.empty(), "make_example_batch: no examples");
  const auto B = static_cast<int64_t>(indices.size());
  int64_t T = 0;
  for (int64_t i : indices) T = std::max<int64_t>(T, examples.tokens.at(i).size());
  auto input = torch::full({B, T}, pad, torch::kLong);
  auto padding = torch::zeros({B, T}, torch::kBool);
  auto labels = torch::empty({B}, torch::kLong);
  auto in = input.accessor<int64_t, 2>();
  auto real = padding.accessor<bool, 2>();
  auto label = labels.accessor<int64_t, 1>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& ids = examples.tokens.at(indices[b]);
    for (size_t t = 0; t < ids.size(); ++t) {
      in[b][t] = ids[t];
      real[b][t] = true;
    }
    label[b] = examples.labels.at(indices[b]);
  }
  Batch batch;
  batch.input = input;
  batch.key_padding = padding;
  batch.labels = labels;
  return batch;
}

std::vector<Batch> ordered_batches(const EncodedExamples& examples, int64_t batch_size,
                                   int32_t pad) {
  check_user(batch_size > 0, "evaluation batch size must be positive");
  std::vector<Batch> batches;
  for (int64_t start = 0; start < examples.size(); start += batch_size) {
    std::vector<int64_t> indices;
    for (int64_t i = start; i < std::min(examples.size(), start + batch_size); ++i)
      indices.push_back(i);
    batches.push_back(make_example_batch(examples, indices, pad));
  }
  return batches;
}

ExampleSampler::ExampleSampler(int64_t num_examples, int64_t batch_size, uint64_t seed, int rank,
                               int world_size)
    : n_(num_examples), batch_size_(batch_size), seed_(seed), rank_(rank), world_size_(world_size) {
  check_user(n_ > 0, "the training split is empty");
  check_user(batch_size_ > 0, "config key 'data.batch_size': expected > 0");
}

const std::vector<int64_t>& ExampleSampler::order(int64_t epoch) {
  if (epoch == cached_epoch_) return order_;
  order_.resize(static_cast<size_t>(n_));
  for (int64_t i = 0; i < n_; ++i) order_[static_cast<size_t>(i)] = i;
  std::seed_seq seq{static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32),
                    static_cast<uint32_t>(epoch), static_cast<uint32_t>(epoch >> 32)};
  std::mt19937_64 generator(seq);
  // Fisher-Yates written out: std::shuffle's algorithm is implementation-defined.
  for (int64_t i = n_ - 1; i > 0; --i)
    std::swap(order_[static_cast<size_t>(i)],
              order_[static_cast<size_t>(generator() % static_cast<uint64_t>(i + 1))]);
  cached_epoch_ = epoch;
  return order_;
}

std::vector<int64_t> ExampleSampler::next() {
  std::vector<int64_t> indices;
  const int64_t first = drawn_ + rank_ * batch_size_;  // this rank's slice of the global batch
  for (int64_t k = first; k < first + batch_size_; ++k)
    indices.push_back(order(k / n_)[static_cast<size_t>(k % n_)]);
  drawn_ += batch_size_ * world_size_;
  return indices;
}

std::string ExampleSampler::state() const {
  std::ostringstream out;
  out << "examples v1 n=" << n_ << " seed=" << seed_ << " drawn=" << drawn_;
  return out.str();
}

void ExampleSampler::load_state(const std::string& state) {
  std::istringstream in(state);
  std::string kind, version, n, seed, drawn;
  in >> kind >> version >> n >> seed >> drawn;
  std::ostringstream expected;
  expected << "n=" << n_;
  check_user(kind == "examples" && version == "v1" && n == expected.str() &&
                 seed == "seed=" + std::to_string(seed_) && drawn.rfind("drawn=", 0) == 0,
             "checkpoint sampler state '" + state + "' does not belong to this training split (" +
                 this->state() + ")");
  drawn_ = std::stoll(drawn.substr(6));
}

}  // namespace attnlab
