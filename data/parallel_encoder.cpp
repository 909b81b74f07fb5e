// See parallel_encoder.h.
#include "data/parallel_encoder.h"

#include <algorithm>

namespace attnlab {
ParallelEncoder::ParallelEncoder(const Tokenizer& tokenizer, int workers, Sink sink,
                                 size_t batch_bytes)
    : tokenizer_(tokenizer),
      workers_(std::max(1, workers)),
      sink_(std::move(sink)),
      batch_bytes_(std::max<size_t>(1, batch_bytes)) {
  if (workers_ > 1)
    for (int i = 0; i < workers_; ++i) threads_.emplace_back([this] { work(); });
}

ParallelEncoder::~ParallelEncoder() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    queue_.clear();  // not started: dropped (their futures are never waited on)
  }
  wake_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void ParallelEncoder::work() {
  while (true) {
    std::packaged_task<Batch()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();  // an exception is stored in the task's future
  }
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
  if (workers_ == 1) {
    // Deferred: encoded on this thread when it is delivered.
    in_flight_.push_back(std::async(std::launch::deferred, encode, std::move(batch)));
  } else {
    std::packaged_task<Batch()> task(
        [encode, b = std::move(batch)]() mutable { return encode(std::move(b)); });
    in_flight_.push_back(task.get_future());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(task));
    }
    wake_.notify_one();
  }
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
