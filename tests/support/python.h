// The project environment's Python ($ATTNLAB_PYTHON, else .venv/bin/python as CMake recorded it in
// common/subprocess.cpp) for the parity references and plot checks. Parity tests never skip: when
// that Python cannot import torch (or matplotlib), the test fails with REQUIRE_PYTHON_WITH /
// python_has's message.
#pragma once

#include <cstdlib>
#include <map>
#include <string>

#include "common/subprocess.h"

namespace attnlab::testing {

using ::attnlab::project_python;

// True when the project Python can import `module` (checked once per module).
inline bool python_has(const std::string& module) {
  static std::map<std::string, bool> cache;
  auto it = cache.find(module);
  if (it != cache.end()) return it->second;
  const std::string command =
      "'" + project_python() + "' -c 'import " + module + "' > /dev/null 2>&1";
  return cache[module] = std::system(command.c_str()) == 0;
}

}  // namespace attnlab::testing

// Fails the current test (no skip) when the project Python lacks `module`.
#define REQUIRE_PYTHON_WITH(module)                                            \
  ASSERT_TRUE(::attnlab::testing::python_has(module))                          \
      << ::attnlab::testing::project_python() << " cannot import " << (module) \
      << "; run scripts/setup.sh (it creates .venv with the pinned torch and matplotlib)"
