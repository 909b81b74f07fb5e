// See thread_environment.h.
#include "common/thread_environment.h"

#include <cstdlib>

namespace attnlab {

void apply_thread_environment_defaults() {
  auto set_default = [](const char* name, const char* value) {
    if (std::getenv(name) == nullptr) ::setenv(name, value, 1);
  };
  set_default("OMP_WAIT_POLICY", "passive");
}

}  // namespace attnlab
