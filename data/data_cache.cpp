// Data cache location and on-demand fetching (see data_cache.h).
#include "data/data_cache.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"
#include "data/data_options.h"
#include "data/sha256.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

const char* const kFetchScript = "scripts/fetch_data.sh";
const char* const kManifest = ".contents";

// The first of `start` and its ancestors that holds the fetch script, or an empty path.
fs::path find_upwards(fs::path start) {
  std::error_code error;
  start = fs::weakly_canonical(start, error);
  for (fs::path dir = start; !dir.empty(); dir = dir.parent_path()) {
    if (fs::exists(dir / kFetchScript, error)) return dir;
    if (dir == dir.root_path()) break;
  }
  return {};
}

// Single-quotes `text` for /bin/sh.
std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

fs::path source_dir() {
  if (const char* env = std::getenv("ATTNLAB_SOURCE_DIR"); env && *env) {
    check_user(fs::exists(fs::path(env) / kFetchScript),
               std::string("ATTNLAB_SOURCE_DIR='") + env + "' does not contain " + kFetchScript);
    return fs::path(env);
  }
  std::error_code error;
  fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    if (fs::path found = find_upwards(exe.parent_path()); !found.empty()) return found;
  }
  if (fs::path found = find_upwards(fs::current_path()); !found.empty()) return found;
  throw UserError(std::string("cannot find the attnlab source tree (") + kFetchScript +
                  ") above the executable or the working directory; set ATTNLAB_SOURCE_DIR");
}

fs::path data_cache_dir(const YAML::Node& config) {
  std::string configured = data_cache_setting(data_options(config)).value_or("");
  if (configured.empty()) {
    if (const char* env = std::getenv("ATTNLAB_DATA"); env && *env) configured = env;
  }
  if (configured.empty()) {
    // The XDG base directory rule, so every clone and working directory shares one cache and
    // nothing large lands in the repository.
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg && fs::path(xdg).is_absolute())
      return fs::path(xdg) / "attnlab";
    if (const char* home = std::getenv("HOME"); home && *home)
      return fs::path(home) / ".cache" / "attnlab";
    return source_dir() / "data" / "cache";  // no home directory at all
  }
  fs::path path(configured);
  return path.is_absolute() ? path : source_dir() / path;
}

fs::path derived_data_dir(const YAML::Node& config) {
  const std::string configured = data_derived_setting(data_options(config)).value_or("");
  if (configured.empty()) return data_cache_dir(config);
  fs::path path(configured);
  return path.is_absolute() ? path : source_dir() / path;
}

namespace {

// Runs fetch_data.sh for `dataset` unless its marker and manifest are present.
void fetch_if_missing(const fs::path& cache, const std::string& dataset) {
  if (fs::exists(cache / dataset / ".verified") && fs::exists(cache / dataset / kManifest)) return;
  const fs::path script = source_dir() / kFetchScript;
  const std::string command = "bash " + shell_quote(script.string()) + " --cache " +
                              shell_quote(cache.string()) + " " + shell_quote(dataset) + " 1>&2";
  const int status = std::system(command.c_str());
  check_user(status == 0 && fs::exists(cache / dataset / ".verified") &&
                 fs::exists(cache / dataset / kManifest),
             "fetching dataset '" + dataset + "' into " + cache.string() + " failed (" +
                 script.string() + " exited with status " + std::to_string(status) +
                 "); run it by hand to see why");
}

// Checks every file the manifest of <cache>/<dataset> lists against its SHA-256.
void verify_package(const fs::path& cache, const std::string& dataset) {
  const fs::path dir = cache / dataset;
  const fs::path manifest = dir / kManifest;
  const std::string refetch = "; delete " + dir.string() + " and run scripts/fetch_data.sh " +
                              dataset + " to fetch it again";
  std::istringstream lines(read_file(manifest));
  std::string line;
  int64_t line_no = 0, files = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (line.empty()) continue;
    // `sha256sum` lines: 64 hex digits, two spaces (or " *"), the path.
    check_user(line.size() > 66 && line.find_first_not_of("0123456789abcdef") == 64 &&
                   (line.compare(64, 2, "  ") == 0 || line.compare(64, 2, " *") == 0),
               manifest.string() + " line " + std::to_string(line_no) +
                   ": expected '<sha256>  <path>'" + refetch);
    const std::string relative = line.substr(66);
    check_user(relative.find("..") == std::string::npos && relative[0] != '/',
               manifest.string() + " line " + std::to_string(line_no) + ": bad path '" + relative +
                   "'" + refetch);
    const fs::path file = dir / "package" / relative;
    check_user(fs::is_regular_file(file), "dataset file " + file.string() +
                                              " is missing (listed in " + manifest.string() + ")" +
                                              refetch);
    check_user(sha256_file(file) == line.substr(0, 64),
               "dataset file " + file.string() +
                   " does not match the SHA-256 recorded when it was fetched (edited or "
                   "truncated)" +
                   refetch);
    ++files;
  }
  check_user(files > 0, manifest.string() + " lists no files" + refetch);
}

}  // namespace

fs::path ensure_dataset(const fs::path& cache, const std::string& dataset) {
  fetch_if_missing(cache, dataset);
  // Each folder is hashed once per process: a loader may be called many times.
  static std::mutex mutex;
  static std::set<std::string> verified;
  const std::string key = fs::absolute(cache / dataset).lexically_normal().string();
  std::lock_guard<std::mutex> lock(mutex);
  if (!verified.count(key)) {
    verify_package(cache, dataset);
    verified.insert(key);
  }
  return cache / dataset / "package";
}

std::string dataset_manifest(const fs::path& cache, const std::string& dataset) {
  fetch_if_missing(cache, dataset);
  return read_file(cache / dataset / kManifest);
}

std::string read_file(const fs::path& path) {
  // A device or FIFO (tokenizer.model_path=/dev/zero) would be read forever.
  check_user(!fs::exists(path) || fs::is_regular_file(path),
             "cannot read " + path.string() + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  check_user(static_cast<bool>(in), "cannot read file " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace attnlab
