// Thread-pool waiting policy for attnlab executables. LibTorch runs elementwise work on OpenMP
// (libgomp) threads and matrix products on OpenBLAS's own pthreads. By default OpenMP workers
// busy-wait after each parallel region, so on a machine with few cores they steal the cores
// OpenBLAS's threads need: on 2 cores this cut the default experiment's throughput from ~11k to
// ~4.6k tokens/s, with a quarter of the CPU time in the kernel (sched_yield). libgomp reads its
// policy once, when it is loaded (before main), so it cannot be changed from inside the process;
// the executable instead sets it and re-executes itself once. (OpenBLAS's own spin time,
// OPENBLAS_THREAD_TIMEOUT, is best left at its default: lowering it cost ~10% here.)
#pragma once

namespace attnlab {

// Unless the environment already says otherwise, sets OMP_WAIT_POLICY=passive and re-executes
// /proc/self/exe with `argv`.
// Returns normally when nothing needed changing or when the re-exec is impossible.
void ensure_thread_environment(char** argv);

}  // namespace attnlab
