// `dist.backend=nccl`: collectives.h on c10d::ProcessGroupNCCL from LibTorch's CUDA build. The
// tensors stay on this rank's GPU: gradient buckets are reduced where backward wrote them, with no
// host staging. ProcessGroupNCCL runs each collective on its own NCCL stream, ordered after the
// work already queued on the caller's stream; the shared C10dOp::test() polls the collective's
// CUDA event without blocking and, once it fired, makes the caller's stream wait for NCCL's (so
// dist.timeout_s applies to NCCL as to the other backends, and the reducer's progress pokes from
// the autograd thread never make backward wait).
//
// Hangs: a collective that does not finish within dist.timeout_s is caught by wait_or_abort's
// deadline (naming the collective) and by ProcessGroupNCCL's watchdog thread, which
// (TORCH_NCCL_ASYNC_ERROR_HANDLING=1, set unless the user chose another mode) ends the process;
// mpirun/srun then stop the others.
//
// Rank and world size come from the launcher (mpirun, srun, torchrun); the collectives and the
// rendezvous are c10d_collectives.h's, shared with gloo. NCCL's header comes from NVIDIA's
// nvidia-nccl wheel that PyTorch depends on (CMakeLists.txt finds it); a build without it compiles
// this file to a clear UserError, and ATTNLAB_REQUIRE_NCCL makes its absence a compile error
// instead.
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "distributed/c10d_collectives.h"
#include "distributed/distributed.h"

#if __has_include(<nccl.h>) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#define ATTNLAB_HAVE_NCCL 1
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#elif defined(ATTNLAB_REQUIRE_NCCL)
#error "nccl.h or c10d/ProcessGroupNCCL.hpp not found, but CMake found NCCL (ATTNLAB_REQUIRE_NCCL)"
#endif

namespace attnlab {

#ifdef ATTNLAB_HAVE_NCCL

namespace {

class NcclCollectives : public C10dCollectives {
 public:
  NcclCollectives(const DistOptions& options, const LauncherRank& launcher,
                  const torch::Device& device)
      : C10dCollectives("nccl", options, launcher, device) {
    setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1", /*overwrite=*/0);
    auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
    nccl_options->timeout =
        std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000));
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, launcher.rank,
                                                             launcher.world_size, nccl_options);
    group->setBoundDeviceId(device);
    group_ = group;
  }
};

}  // namespace

std::unique_ptr<Collectives> make_nccl_collectives(const DistOptions& options,
                                                   const LauncherRank& rank,
                                                   const torch::Device& device) {
  return std::make_unique<NcclCollectives>(options, rank, device);
}

#else  // no NCCL headers

std::unique_ptr<Collectives> make_nccl_collectives(const DistOptions&, const LauncherRank&,
                                                   const torch::Device&) {
  throw UserError(
      "dist.backend=nccl: this attnlab was built without NCCL's header (nccl.h, from the "
      "nvidia-nccl wheel of the project's PyTorch); rebuild after scripts/setup.sh, or use "
      "dist.backend=gloo");
}

#endif

}  // namespace attnlab
