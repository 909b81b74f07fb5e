// Thread-pool environment for the attnlab executable. LibTorch's OpenMP runtime (libgomp) reads
// OMP_* variables once, when it is loaded, so they cannot be changed from inside a process that
// already runs LibTorch. The `attnlab` front end links no LibTorch: it sets these defaults and
// only then loads the runtime library, so no re-execution is needed.
#pragma once

namespace attnlab {

// OMP_WAIT_POLICY=passive unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT. LibTorch's
// OpenMP workers (which also run MKL's GEMMs) otherwise spin after each parallel region. On
// dedicated, idle cores spinning is ~20% faster (default experiment, 2 threads: 12,708 against
// 10,266 tokens/s); on a machine with other work it collapses (30-step training at load average
// ~9: 0.7k tokens/s with libgomp's default, 1.25k with GOMP_SPINCOUNT=10000, 2.0k passive). A
// laptop, a shared box, oversubscribed MPI ranks and a parallel test suite are the second case, so
// attnlab waits passively unless told otherwise (GOMP_SPINCOUNT=300000 restores libgomp's default).
void apply_thread_environment_defaults();

}  // namespace attnlab
