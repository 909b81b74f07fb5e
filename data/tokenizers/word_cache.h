// The per-thread memo of word -> token ids that the BPE tokenizers (gpt2, hf) keep: corpora repeat
// words a lot, and threads that encode in parallel (data/parallel_encoder) never wait on each
// other. A thread's memo serves one tokenizer at a time, named by a serial that is never reused
// (an address could be, by a later tokenizer with another vocabulary).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace attnlab {

struct WordCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, std::vector<int32_t>> words;
};

// A new tokenizer's serial.
uint64_t next_word_cache_serial();

// This thread's memo, emptied first when another tokenizer than `serial` filled it. Inline: the
// encoders call it once per word.
inline WordCache& thread_word_cache(uint64_t serial) {
  thread_local WordCache cache;
  if (cache.owner != serial) {
    cache.words.clear();
    cache.owner = serial;
  }
  return cache;
}

}  // namespace attnlab
