// Implementation of run_directory.h.
#include "config/run_directory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/error_log.h"
#include "config/interpolation.h"
#include "config/yaml_io.h"
#include "config/yaml_tree.h"

#ifndef ATTNLAB_SOURCE_DIR
#define ATTNLAB_SOURCE_DIR "."
#endif

namespace attnlab::config {
namespace fs = std::filesystem;
namespace {

std::string shell_quote(const std::string& arg) {
  bool plain = !arg.empty() && arg.find_first_not_of(
                                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
                                   "WXYZ0123456789_-+=.,/:@%") == std::string::npos;
  if (plain) return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Written as <path>.tmp and renamed over `path`: a failed write (a full disk) keeps the old file.
void write_file(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out.good()) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw UserError("cannot write '" + path.string() + "'");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  check_user(!ec, "cannot write '" + path.string() + "': " + ec.message());
}

// Runs a command and returns its stdout; `ok` is false on a non-zero exit.
std::string run_command(const std::string& command, bool& ok) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) {
    ok = false;
    return output;
  }
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  ok = pclose(pipe) == 0;
  return output;
}

void record_git_state(const fs::path& dir, const std::string& source_dir) {
  std::string git = "git -C " + shell_quote(source_dir) + " ";
  bool ok = false;
  std::string commit = run_command(git + "rev-parse HEAD 2>/dev/null", ok);
  fs::path diff_path = dir / "git.diff";
  std::error_code ec;
  if (!ok) {
    write_file(dir / "git.txt", "source: " + source_dir + "\nnot a git checkout\n");
    fs::remove(diff_path, ec);
    return;
  }
  std::string status = run_command(git + "status --porcelain 2>/dev/null", ok);
  std::string text = "source: " + source_dir + "\ncommit: " + commit +
                     "dirty: " + (status.empty() ? "false" : "true") + "\nstatus:\n" + status;
  write_file(dir / "git.txt", text);
  if (status.empty()) {
    fs::remove(diff_path, ec);  // ours, from an earlier launch of this run; the tree is clean now
    return;
  }
  // Tracked changes against HEAD; untracked files are listed in git.txt's status ("??").
  write_file(diff_path, run_command(git + "diff HEAD 2>/dev/null", ok));
}

}  // namespace

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) out += (out.empty() ? "" : " ") + shell_quote(arg);
  return out;
}

RunDirectory prepare_run_directory(const YAML::Node& resolved_config,
                                   const std::vector<std::string>& overrides,
                                   const std::vector<std::string>& argv) {
  return prepare_run_directory(resolved_config, overrides, argv, ATTNLAB_SOURCE_DIR);
}

std::string run_directory_path(const YAML::Node& resolved_config) {
  YAML::Node dir_node = find_node(resolved_config, "run.dir");
  check_user(dir_node.IsDefined() && dir_node.IsScalar() && !dir_node.Scalar().empty(),
             "config key 'run.dir' must name the run directory");
  check_user(!has_interpolation(dir_node),
             "run.dir '" + dir_node.Scalar() + "' is not resolved; pass the resolved config");
  return dir_node.Scalar();
}

RunDirectoryLock::RunDirectoryLock(const std::string& path) : path_(path) {
  std::error_code ec;
  created_ = !fs::exists(path, ec);
  fs::create_directories(path, ec);
  check_user(!ec && fs::is_directory(path),
             "cannot create run directory '" + path + "': " + ec.message());
  const std::string lock_path = (fs::path(path) / ".lock").string();
  fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw UserError("cannot open the lock file '" + lock_path + "': " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    std::string holder;
    char buffer[64] = {};
    const ssize_t n = ::pread(fd_, buffer, sizeof(buffer) - 1, 0);
    if (n > 0) holder.assign(buffer, static_cast<size_t>(n));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (error != EWOULDBLOCK)
      throw UserError("cannot lock run directory '" + path + "' (" + lock_path +
                      "): " + std::strerror(error));
    throw UserError("run directory '" + path + "' is in use by another attnlab process (pid " +
                    (holder.empty() ? std::string("unknown") : holder) + ", holding " + lock_path +
                    "); wait for it to finish or choose another run.dir");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // The lock is held; only the PID in the message of a second process would be missing.
  }
}

RunDirectoryLock::~RunDirectoryLock() {
  if (fd_ < 0) return;
  if (created_ && !keep_) {
    // Validation failed in a directory this process created: leave no trace of the attempt.
    std::error_code ec;
    fs::remove(fs::path(path_) / ".lock", ec);
    fs::remove(path_, ec);  // only succeeds when empty
  }
  ::close(fd_);  // releases the flock
}

std::vector<std::string> RunDirectoryLock::remove_stale_temporaries() const {
  std::vector<std::string> removed;
  for (const fs::path dir : {fs::path(path_), fs::path(path_) / "checkpoints"}) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> stale;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.is_regular_file(ec) && entry.path().extension() == ".tmp")
        stale.push_back(entry.path());
    for (const auto& file : stale)
      if (fs::remove(file, ec)) removed.push_back(file.string());
  }
  return removed;
}

RunDirectory prepare_run_directory(const YAML::Node& resolved_config,
                                   const std::vector<std::string>& overrides,
                                   const std::vector<std::string>& argv,
                                   const std::string& source_dir) {
  RunDirectory run;
  run.path = run_directory_path(resolved_config);
  std::error_code ec;
  run.existed = fs::is_directory(run.path, ec);
  fs::create_directories(run.path, ec);
  check_user(!ec && fs::is_directory(run.path),
             "cannot create run directory '" + run.path + "': " + ec.message());
  fs::path dir(run.path);
  write_file(dir / "config.yaml", to_yaml(resolved_config));
  YAML::Emitter list;  // block style, one override a line, like Hydra's overrides.yaml
  list << YAML::BeginSeq;
  for (const auto& o : overrides) list << YAML::DoubleQuoted << o;
  list << YAML::EndSeq;
  write_file(dir / "overrides.yaml", overrides.empty() ? "[]\n" : std::string(list.c_str()) + "\n");
  write_file(dir / "command.txt", shell_join(argv) + "\n");
  record_git_state(dir, source_dir);
  set_error_log_directory(run.path);  // a later failure's full report goes to its error.log
  return run;
}

std::string multirun_job_dir(const YAML::Node& config, int job) {
  YAML::Node sweep_dir = find_node(config, "run.sweep_dir");
  std::string base = sweep_dir.IsDefined() && sweep_dir.IsScalar()
                         ? sweep_dir.Scalar()
                         : std::string("runs/multirun/${now:%Y-%m-%d_%H-%M-%S}");
  YAML::Node probe = deep_copy(config);
  set_node(probe, "run.sweep_dir", string_scalar(base));
  YAML::Node resolved = resolve_interpolations(probe);
  return find_node(resolved, "run.sweep_dir").Scalar() + "/" + std::to_string(job);
}

}  // namespace attnlab::config
