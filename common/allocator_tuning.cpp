// glibc heap settings; see allocator_tuning.h.
#include "common/allocator_tuning.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace attnlab {

void tune_allocator() {
  const char* opt_out = std::getenv("ATTNLAB_MALLOC_TUNING");
  if (opt_out != nullptr && std::strcmp(opt_out, "0") == 0) return;
#ifdef M_MMAP_THRESHOLD
  // Setting either value also disables glibc's adaptive threshold, which is what we want.
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 32 << 20);
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

}  // namespace attnlab
