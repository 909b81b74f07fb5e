// Per-thread word memo of the BPE tokenizers; see word_cache.h.
#include "data/tokenizers/word_cache.h"

#include <atomic>

namespace attnlab {

uint64_t next_word_cache_serial() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

}  // namespace attnlab
