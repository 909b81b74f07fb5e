// attnlab executable, the front end: `attnlab <command> [options] [overrides...]`.
//
// It links no LibTorch. Loading LibTorch (and its CUDA libraries) costs 0.3-0.5 s of static
// initialisers, so `attnlab --help`, `attnlab <command> --help` and usage errors are answered
// here at once. Every command runs in libattnlab_runtime.so, which this program dlopens from its
// own folder after setting what must precede LibTorch: the glibc heap tuning and the OpenMP wait
// policy (common/thread_environment.h), which libgomp reads once, when it is loaded (the
// LibTorch 1.13 build had to re-execute itself for that). Every usage or config error is a
// UserError: one `error: ...` line, exit code 2.
#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "command_line/command_catalog.h"
#include "command_line/command_line.h"
#include "command_line/help.h"
#include "common/allocator_tuning.h"
#include "common/error.h"
#include "common/suggestions.h"
#include "common/thread_environment.h"

namespace {

// The runtime library: $ATTNLAB_RUNTIME, else libattnlab_runtime.so next to this executable.
std::string runtime_path() {
  if (const char* env = std::getenv("ATTNLAB_RUNTIME"); env != nullptr && *env) return env;
  std::error_code error;
  std::filesystem::path self = std::filesystem::canonical("/proc/self/exe", error);
  return (error ? std::filesystem::path(".") : self.parent_path()) / "libattnlab_runtime.so";
}

int run_in_runtime(int argc, char** argv) {
  attnlab::apply_thread_environment_defaults();  // libgomp reads it when the runtime loads
  const std::string path = runtime_path();
  // RTLD_GLOBAL: Open MPI's plugins, which libmpi dlopens, resolve libmpi's symbols globally.
  void* runtime = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (runtime == nullptr) {
    std::cerr << "error: cannot load the attnlab runtime '" << path << "': " << dlerror()
              << " (rebuild with scripts/setup.sh, or set ATTNLAB_RUNTIME)\n";
    return 1;
  }
  using Entry = int (*)(int, char**);
  auto entry = reinterpret_cast<Entry>(dlsym(runtime, "attnlab_runtime_main"));
  if (entry == nullptr) {
    std::cerr << "error: '" << path << "' has no attnlab_runtime_main: " << dlerror() << "\n";
    return 1;
  }
  return entry(argc, argv);
}

int run(int argc, char** argv) {
  const attnlab::CommandLine line = attnlab::parse_command_line(argc, argv);
  if (line.version) return run_in_runtime(argc, argv);  // LibTorch reports its own versions
  if (line.command.empty()) {
    std::cout << attnlab::global_help(line.args.config_dir);
    return line.help ? 0 : attnlab::kUserErrorExitCode;
  }
  if (line.help) {
    std::cout << attnlab::command_help(line.command);
    return 0;
  }
  // An unknown command fails before LibTorch loads, with the closest command when there is one.
  const std::vector<std::string> commands = attnlab::command_catalog().names();
  if (std::find(commands.begin(), commands.end(), line.command) == commands.end()) {
    std::string list;
    for (const auto& name : commands) list += (list.empty() ? "" : ", ") + name;
    throw attnlab::UserError("unknown command '" + line.command + "'" +
                             attnlab::did_you_mean(line.command, commands) +
                             "; available: " + list);
  }
  return run_in_runtime(argc, argv);
}

}  // namespace

int main(int argc, char** argv) {
  attnlab::tune_allocator();
  try {
    return run(argc, argv);
  } catch (const attnlab::UserError& error) {
    std::cerr << "error: " << error.what() << "\n";
    return attnlab::kUserErrorExitCode;
  } catch (const std::exception& error) {  // never an abort, whatever the front end hits
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
}
