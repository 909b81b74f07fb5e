// tune_allocator keeps multi-megabyte blocks (a training step's activations) in the malloc heap
// instead of giving each its own mmap, which every step would page-fault in again.
#include "common/allocator_tuning.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>

using namespace attnlab;

TEST(AllocatorTuning, LargeBlocksComeFromTheHeap) {
  ASSERT_EQ(std::getenv("MALLOC_MMAP_THRESHOLD_"), nullptr) << "the test needs glibc's defaults";
  tune_allocator();
  const size_t mapped_before = mallinfo2().hblks;
  const size_t size = 24u << 20;  // 24 MiB: above glibc's default mmap threshold, below ours
  void* block = std::malloc(size);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, size);
  EXPECT_EQ(mallinfo2().hblks, mapped_before) << "a 24 MiB block was mmapped";
  std::free(block);
  // Above the new threshold, blocks are still mmapped (and returned to the system on free).
  void* huge = std::malloc(64u << 20);
  ASSERT_NE(huge, nullptr);
  EXPECT_EQ(mallinfo2().hblks, mapped_before + 1);
  std::free(huge);
}
