// Thread-pool environment for the attnlab executable. LibTorch's OpenMP runtime (libgomp) reads
// OMP_* variables once, when it is loaded, so they cannot be changed from inside a process that
// already runs LibTorch. The `attnlab` front end links no LibTorch: it sets these defaults and
// only then loads the runtime library, so no re-execution is needed.
#pragma once

namespace attnlab {

// Sets attnlab's OpenMP defaults (see thread_environment.cpp for the measurements behind them)
// unless the environment already sets them; the user's setting wins.
void apply_thread_environment_defaults();

}  // namespace attnlab
