// Implementation of help.h. The group listing is discovered at run time from the config search
// path, so users' own groups (ATTNLAB_CONFIG_PATH) show up too.
#include "command_line/help.h"

#include <sstream>

#include "command_line/command_catalog.h"
#include "common/error.h"
#include "config/config.h"

namespace attnlab {
namespace {

const char* kOptions =
    "options:\n"
    "  --config-dir DIR  primary config dir (default: $ATTNLAB_CONFIG_DIR, else ./configs, else\n"
    "                    the source tree's configs/); $ATTNLAB_CONFIG_PATH adds dirs (a:b)\n"
    "  -m, --multirun    run a sweep: a=1,2,3  a=range(0,10,2)  a=choice(x,y)  group=glob(*)\n"
    "  --resolve         resolve ${...} interpolations (attnlab config)\n"
    "  --defaults        attnlab config --defaults [group]: typed options, defaults, meanings\n"
    "  --dry-run         train/submit: show what would run (config, run dir, jobs); write nothing\n"
    "  -h, --help        this help; attnlab <command> --help for one command\n"
    "  --version         attnlab's, LibTorch's and CUDA's versions\n"
    "\n"
    "overrides:\n"
    "  key=value     set an existing key (model.d_model=256, optim.betas=[0.9,0.99])\n"
    "  +key=value    add a new key;  ++key=value  add or set;  ~key  delete\n"
    "  group=option  choose a config group option (attention=mha, experiment=tiny, group=null)\n";

std::string pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

}  // namespace

std::string global_help(const std::optional<std::string>& config_dir) {
  std::ostringstream out;
  out << "usage: attnlab <command> [options] [overrides...]\n\ncommands:\n";
  const auto& registry = command_catalog();
  for (const auto& name : registry.names())
    out << "  " << pad(name, 10) << registry.get(name).summary << "\n";
  out << "\n" << kOptions << "\n";
  try {
    std::vector<std::string> path = config::search_path(config_dir);
    out << "config groups (search path:";
    for (const auto& dir : path) out << " " << dir;
    out << "):\n";
    for (const auto& [group, options] : config::discover_groups(path)) {
      out << "  " << pad(group + ":", 12);
      for (size_t i = 0; i < options.size(); ++i) out << (i ? ", " : "") << options[i];
      out << "\n";
    }
  } catch (const UserError& e) {
    out << "config groups: unavailable (" << e.what() << ")\n";
  }
  return out.str();
}

std::string command_help(const std::string& name) {
  const CommandInfo& command = command_catalog().get(name);
  std::ostringstream out;
  out << "attnlab " << name << ": " << command.summary << "\n\n"
      << "usage: attnlab " << name << " [options] [overrides...]\n";
  if (!command.usage.empty())
    out << "\n" << command.usage << (command.usage.back() == '\n' ? "" : "\n");
  out << "\n" << kOptions;
  return out.str();
}

}  // namespace attnlab
