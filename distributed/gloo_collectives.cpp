// `dist.backend=gloo`: collectives.h on c10d::ProcessGroupGloo. Debian's libtorch_cpu is built
// with USE_C10D_GLOO and links libgloo.so.0; the gloo headers that ProcessGroupGloo.hpp includes
// come with libgloo-dev (same source version as libgloo0). Without them this file compiles to a
// clear UserError.
//
// Rank and world size come from the launcher's environment (mpirun, srun, torchrun), so MPI is
// not initialised at all. The collectives and the rendezvous are c10d_collectives.h's.
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "distributed/c10d_collectives.h"
#include "distributed/distributed.h"

#if __has_include(<gloo/config.h>) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#define ATTNLAB_HAVE_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

namespace attnlab {

#ifdef ATTNLAB_HAVE_GLOO

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return (value != nullptr && *value != '\0') ? value : fallback;
}

class GlooCollectives : public C10dCollectives {
 public:
  GlooCollectives(const DistOptions& options, const LauncherRank& launcher)
      : C10dCollectives("gloo", options, launcher, torch::Device(torch::kCPU)) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000));
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
    // GLOO_SOCKET_IFNAME picks the network interface (as in PyTorch); one node uses loopback.
    const std::string interface = env_or("GLOO_SOCKET_IFNAME", "");
    if (!interface.empty())
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    else if (env_or("MASTER_ADDR", "").empty())
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    gloo_options->threads = 2;  // one for bucket all-reduces, one for everything else
    group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, launcher.rank, launcher.world_size,
                                                         gloo_options);
  }
};

}  // namespace

std::unique_ptr<Collectives> make_gloo_collectives(const DistOptions& options,
                                                   const LauncherRank& rank) {
  return std::make_unique<GlooCollectives>(options, rank);
}

#else  // no gloo headers

std::unique_ptr<Collectives> make_gloo_collectives(const DistOptions&, const LauncherRank&) {
  throw UserError(
      "dist.backend=gloo: this attnlab was built without the gloo headers that LibTorch's "
      "c10d/ProcessGroupGloo.hpp includes; install libgloo-dev (Debian) and rebuild, or use "
      "dist.backend=mpi");
}

#endif

}  // namespace attnlab
