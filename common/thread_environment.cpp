// See thread_environment.h.
#include "common/thread_environment.h"

#include <unistd.h>

#include <cstdlib>

namespace attnlab {

void ensure_thread_environment(char** argv) {
  // Set on the first pass, so the re-executed process (and its children) never loop.
  if (std::getenv("ATTNLAB_THREAD_ENVIRONMENT") != nullptr) return;
  ::setenv("ATTNLAB_THREAD_ENVIRONMENT", "1", 1);
  bool changed = false;
  auto set_default = [&](const char* name, const char* value) {
    if (std::getenv(name) != nullptr) return;  // the user's setting wins
    ::setenv(name, value, 1);
    changed = true;
  };
  set_default("OMP_WAIT_POLICY", "passive");
  if (changed) ::execv("/proc/self/exe", argv);  // returns only on failure: run as we are
}

}  // namespace attnlab
