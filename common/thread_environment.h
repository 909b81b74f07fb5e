// Thread-pool waiting policy for attnlab executables. LibTorch runs elementwise work on OpenMP
// (libgomp) threads and matrix products on OpenBLAS's own pthreads. By default both pools
// busy-wait after each job (OpenBLAS for ~2^28 cycles, calling sched_yield), so on a machine
// with few cores each pool's spinning threads steal the cores the other pool needs: on 2 cores
// this cut the default experiment's throughput by about half, with half the CPU time in the
// kernel. Both libraries read their policy once, when they are loaded (before main), so it cannot
// be changed from inside the process; the executable instead sets it and re-executes itself once.
#pragma once

namespace attnlab {

// Unless the environment already says otherwise, sets OMP_WAIT_POLICY=passive and
// OPENBLAS_THREAD_TIMEOUT=4 (sleep almost at once) and re-executes /proc/self/exe with `argv`.
// Returns normally when nothing needed changing or when the re-exec is impossible.
void ensure_thread_environment(char** argv);

}  // namespace attnlab
