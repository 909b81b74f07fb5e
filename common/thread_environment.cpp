// See thread_environment.h.
#include "common/thread_environment.h"

#include <cstdlib>

namespace attnlab {

void apply_thread_environment_defaults() {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
}

}  // namespace attnlab
