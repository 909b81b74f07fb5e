// posix_spawn-based child processes; see subprocess.h.
#include "common/subprocess.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "common/error.h"

extern char** environ;

namespace attnlab {

namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

pid_t spawn_process(const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty()) throw std::runtime_error("spawn_process: empty argv");
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!log_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  }
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  const int error = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0)
    throw std::runtime_error("cannot start '" + argv[0] + "': " + std::strerror(error));
  return pid;
}

ExitedProcess wait_any_child() {
  ExitedProcess exited;
  int status = 0;
  pid_t pid;
  do {
    pid = waitpid(-1, &status, 0);
  } while (pid < 0 && errno == EINTR);
  if (pid < 0) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
  exited.pid = pid;
  exited.exit_code = decode_status(status);
  return exited;
}

int run_process(const std::vector<std::string>& argv, const std::string& log_path) {
  const pid_t pid = spawn_process(argv, log_path);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
  }
  return decode_status(status);
}

std::string current_executable() {
  char buffer[4096];
  const ssize_t n = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  if (n <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  return std::string(buffer, static_cast<size_t>(n));
}

std::string project_python() {
  const char* env = std::getenv("ATTNLAB_PYTHON");
  return env != nullptr && *env ? env : ATTNLAB_PYTHON;
}

std::string project_script(const std::string& name) {
  namespace fs = std::filesystem;
  if (const char* dir = std::getenv("ATTNLAB_SCRIPTS_DIR"); dir != nullptr && *dir) {
    const fs::path path = fs::path(dir) / name;
    if (fs::exists(path)) return path.string();
  }
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  for (fs::path dir = exe.parent_path(); !error && !dir.empty() && dir != dir.root_path();
       dir = dir.parent_path()) {
    if (fs::exists(dir / "scripts" / name)) return (dir / "scripts" / name).string();
  }
  if (fs::exists(fs::path("scripts") / name)) return (fs::path("scripts") / name).string();
  throw UserError("cannot find scripts/" + name +
                  "; set ATTNLAB_SCRIPTS_DIR to the repository's scripts/ directory");
}

}  // namespace attnlab
