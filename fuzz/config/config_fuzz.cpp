// libFuzzer target for the config engine: YAML loading under the input limits, defaults-list
// composition, the override parser, value overrides, interpolation and sweep expansion, i.e.
// everything a config file or a command line reaches before a run starts. An input is text in
// sections; the first is config.yaml, each "%%% <group>/<option>.yaml" line starts a group file
// and "%%% overrides" starts the command line, one override per line:
//
//   defaults: [{model: a}, _self_]
//   x: ${model.w}
//   %%% model/a.yaml
//   w: 1
//   %%% overrides
//   model.w=2
//
// Every input must compose or fail with attnlab::UserError carrying a message; any other
// exception, a crash, a sanitizer report or a hang (-timeout) is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "config/config.h"
#include "config/override_parser.h"
#include "config/yaml_io.h"

namespace {

namespace fs = std::filesystem;
using attnlab::UserError;
namespace cfg = attnlab::config;

constexpr size_t kMaxFiles = 8;
constexpr size_t kMaxOverrides = 16;

// The scratch config tree, rewritten for every input: in memory (/dev/shm) when TMPDIR is not
// set, since on a slow disk the file writes, not the engine, would bound the executions per
// second.
std::string& config_dir() {
  static std::string dir = [] {
    std::error_code ec;
    fs::path base =
        !getenv("TMPDIR") && fs::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0
            ? fs::path("/dev/shm")
            : fs::temp_directory_path();
    std::string pattern = (base / "attnlab_config_fuzz_XXXXXX").string();
    if (!mkdtemp(pattern.data())) std::abort();
    return pattern;
  }();
  return dir;
}

// "loop.yaml", "model/a.yaml", "db/sub/c.yaml": up to two lower-case folders and a lower-case name.
bool allowed_file_name(const std::string& name) {
  const std::string suffix = ".yaml";
  if (name.size() <= suffix.size() || name.size() > 40) return false;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  int slashes = 0;
  char previous = '/';
  for (size_t i = 0; i + suffix.size() < name.size(); ++i) {
    char c = name[i];
    if (c == '/') {
      if (previous == '/') return false;
      ++slashes;
    } else if (!((c >= 'a' && c <= 'z') || c == '_')) {
      return false;
    }
    previous = c;
  }
  return previous != '/' && slashes <= 2;
}

struct Input {
  std::vector<std::pair<std::string, std::string>> files;  // relative name, text
  std::vector<std::string> overrides;
};

Input split_sections(const std::string& text) {
  Input input;
  input.files.push_back({"config.yaml", ""});
  std::string* current = &input.files.back().second;
  bool in_overrides = false;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    std::string line = text.substr(start, end == std::string::npos ? end : end - start);
    start = end == std::string::npos ? text.size() : end + 1;
    if (line.rfind("%%% ", 0) == 0) {
      std::string name = line.substr(4);
      in_overrides = name == "overrides";
      current = nullptr;
      if (!in_overrides && allowed_file_name(name) && input.files.size() < kMaxFiles) {
        input.files.push_back({name, ""});
        current = &input.files.back().second;
      }
      continue;
    }
    if (in_overrides) {
      if (input.overrides.size() < kMaxOverrides) input.overrides.push_back(line);
    } else if (current) {
      *current += line + "\n";
    }
  }
  return input;
}

void write_tree(const Input& input) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(config_dir(), ec))
    fs::remove_all(entry.path(), ec);
  for (const auto& [name, text] : input.files) {
    fs::path file = fs::path(config_dir()) / name;
    fs::create_directories(file.parent_path(), ec);
    std::ofstream(file, std::ios::binary) << text;
  }
}

// Runs `body`; a UserError is an accepted outcome, anything else is a finding.
template <typename F>
void expect_success_or_user_error(const char* what, F&& body) {
  try {
    body();
  } catch (const UserError& e) {
    if (std::string(e.what()).empty()) {
      std::fprintf(stderr, "%s: UserError with an empty message\n", what);
      std::abort();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: non-UserError exception: %s\n", what, e.what());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Input input = split_sections(std::string(reinterpret_cast<const char*>(data), size));
  write_tree(input);
  cfg::ComposeRequest request;
  request.config_dir = config_dir();
  request.overrides = input.overrides;
  expect_success_or_user_error("compose", [&] {
    YAML::Node config = cfg::compose(request);
    // A composed config is what a run saves and reloads; both must stay within the engine.
    expect_success_or_user_error("save and reload", [&] {
      cfg::apply_overrides(cfg::parse_yaml(cfg::to_yaml(config), "saved config.yaml"),
                           input.overrides);
    });
  });
  expect_success_or_user_error("sweep", [&] {
    for (const auto& job : cfg::expand_sweep(request)) {
      if (job.index >= 2) break;
      cfg::compose_sweep_job(request, job);
    }
  });
  for (const auto& text : input.overrides)
    expect_success_or_user_error("override value", [&] { cfg::parse_override_value(text); });
  return 0;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The engine also reads these; the fuzzer's tree must be the only config directory.
  unsetenv("ATTNLAB_CONFIG_DIR");
  unsetenv("ATTNLAB_CONFIG_PATH");
  config_dir();
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(config_dir(), ec);
  });
  return 0;
}
