// Tokenising documents on several threads while keeping their order, for `prepare`: the shards
// must hold exactly the ids a single thread would write, in the same order, and memory must stay
// bounded however large the corpus is.
//
// Documents are gathered into batches of about 1 MB of text. Full batches go to a pool of
// `workers` long-lived threads (long-lived so that per-thread state such as gpt2's word cache
// survives from batch to batch); at most 2 x workers batches are in flight, and the oldest one is
// delivered (in push order) before another is queued, so at most ~2 x workers MB of text and its
// ids are held at once. With one worker everything runs on the calling thread. Every
// Tokenizer's encode() is const and safe to call concurrently.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/corpora/corpus.h"
#include "data/tokenizers/tokenizer.h"

namespace attnlab {

class ParallelEncoder {
 public:
  // Receives each document in push order with its ids (EOS not appended) and its tag.
  using Sink = std::function<void(int tag, const Document& doc, std::vector<int32_t>&& ids)>;

  ParallelEncoder(const Tokenizer& tokenizer, int workers, Sink sink,
                  size_t batch_bytes = size_t{1} << 20);
  ~ParallelEncoder();  // drops queued batches, waits for running ones, joins the threads
  ParallelEncoder(const ParallelEncoder&) = delete;
  ParallelEncoder& operator=(const ParallelEncoder&) = delete;

  // Queues a document; may deliver earlier documents to the sink first. An encoding error
  // (any exception of the tokenizer) is rethrown here or from finish().
  void push(int tag, Document&& doc);
  // Encodes and delivers everything still queued.
  void finish();

 private:
  struct Batch {
    std::vector<int> tags;
    std::vector<Document> docs;
    std::vector<std::vector<int32_t>> ids;
  };
  void launch();
  void deliver_oldest();
  void work();  // a pool thread's loop

  const Tokenizer& tokenizer_;
  int workers_;
  Sink sink_;
  size_t batch_bytes_;
  Batch pending_;
  size_t pending_bytes_ = 0;
  std::deque<std::future<Batch>> in_flight_;
  // The pool (workers > 1): tasks waiting for a thread.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<Batch()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace attnlab
