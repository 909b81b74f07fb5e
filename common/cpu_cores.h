// How many cores this process may use: what threads (LibTorch's intra-op pool, `prepare`'s
// tokenizing workers) are sized by. Under taskset, cgroups cpusets, mpirun --bind-to or Slurm's
// task binding, the affinity mask is smaller than the machine, and more threads than it only
// contend.
#pragma once

namespace attnlab {

// The cores in this process's CPU affinity mask; the hardware count when the mask is unknown.
int available_cores();

}  // namespace attnlab
