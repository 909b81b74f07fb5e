// See parallel_encoder.h.
#include "data/parallel_encoder.h"

#include <algorithm>

namespace attnlab {
ParallelEncoder::ParallelEncoder(const Tokenizer& tokenizer, int workers, Sink sink,
                                 size_t batch_bytes)
    : tokenizer_(tokenizer),
      workers_(std::max(1, workers)),
      sink_(std::move(sink)),
      batch_bytes_(std::max<size_t>(1, batch_bytes)) {}

ParallelEncoder::~ParallelEncoder() {
  for (auto& task : in_flight_)
    if (task.valid()) task.wait();
}

void ParallelEncoder::push(int tag, Document&& doc) {
  pending_bytes_ += doc.text.size();
  pending_.tags.push_back(tag);
  pending_.docs.push_back(std::move(doc));
  if (pending_bytes_ >= batch_bytes_) launch();
}

void ParallelEncoder::launch() {
  if (pending_.docs.empty()) return;
  Batch batch = std::move(pending_);
  pending_ = Batch{};
  pending_bytes_ = 0;
  auto encode = [this](Batch b) {
    b.ids.reserve(b.docs.size());
    for (const auto& doc : b.docs) b.ids.push_back(tokenizer_.encode(doc.text));
    return b;
  };
  // One worker: deferred, so the batch is encoded on this thread when it is delivered.
  in_flight_.push_back(std::async(workers_ == 1 ? std::launch::deferred : std::launch::async,
                                  encode, std::move(batch)));
  while (in_flight_.size() >= static_cast<size_t>(2 * workers_)) deliver_oldest();
}

void ParallelEncoder::deliver_oldest() {
  std::future<Batch> task = std::move(in_flight_.front());
  in_flight_.pop_front();
  Batch batch = task.get();
  for (size_t i = 0; i < batch.docs.size(); ++i)
    sink_(batch.tags[i], batch.docs[i], std::move(batch.ids[i]));
}

void ParallelEncoder::finish() {
  launch();
  while (!in_flight_.empty()) deliver_oldest();
}

}  // namespace attnlab
