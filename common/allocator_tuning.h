// Heap settings for attnlab executables. LibTorch's CPU allocator takes tensor memory from glibc
// malloc, which serves every block above its mmap threshold (128 KiB, raised adaptively) with a
// fresh mmap and returns it with munmap on free. A training step allocates and frees the same
// multi-megabyte activations every step, so each step page-faults and zero-fills all of them
// again in the kernel. Raising the mmap threshold to glibc's maximum (32 MiB on 64-bit) and the
// trim threshold keeps those blocks in the heap for reuse.
#pragma once

namespace attnlab {

// Applies the settings with mallopt(), unless the user set MALLOC_MMAP_THRESHOLD_ /
// MALLOC_TRIM_THRESHOLD_ themselves or ATTNLAB_MALLOC_TUNING=0. Call early in main().
void tune_allocator();

}  // namespace attnlab
