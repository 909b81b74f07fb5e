// Implementation of yaml_io.h.
#include "config/yaml_io.h"

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "config/input_limits.h"
#include "config/yaml_tree.h"

namespace attnlab::config {
namespace {

std::string trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  size_t end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

// Hydra reads `# @package X` from the header: the comment lines before the first content line.
std::optional<std::string> package_header(const std::string& text, const std::string& path) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::string t = trim(line);
    if (t.empty()) continue;
    if (t[0] != '#') break;
    std::string body = trim(t.substr(1));
    if (body.rfind("@package", 0) != 0) continue;
    std::string package = trim(body.substr(8));
    check_user(!package.empty(), path + ": '# @package' needs a package name (e.g. _global_)");
    check_key_path(package, path + ": '# @package'");
    return package;
  }
  return std::nullopt;
}

// Checks the text against the input limits, then parses it; `stats` (when given) receives its
// expanded size and depth.
YAML::Node parse_checked(const std::string& text, const std::string& origin, YamlStats* stats) {
  try {
    YamlStats checked = check_yaml_text(text, origin);
    if (stats) *stats = checked;
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    // yaml-cpp marks are 0-based; editors count from 1.
    throw UserError(origin + ":" + std::to_string(e.mark.line + 1) + ":" +
                    std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
  }
}

bool scalar_list(const YAML::Node& node) {
  if (!node.IsSequence()) return false;
  for (const auto& item : node)
    if (item.IsMap() || item.IsSequence()) return false;
  return true;
}

void emit(YAML::Emitter& out, const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) {
    out << YAML::Null;
  } else if (node.IsScalar()) {
    ValueKind kind = value_kind(node);
    // A string whose text would read back as another type (or is empty) must be quoted.
    bool quote = kind == ValueKind::kString && infer_scalar_kind(node.Scalar()) != kind;
    if (quote) out << YAML::DoubleQuoted;
    out << node.Scalar();
  } else if (node.IsSequence()) {
    if (scalar_list(node)) out << YAML::Flow;
    out << YAML::BeginSeq;
    for (const auto& item : node) emit(out, item);
    out << YAML::EndSeq;
  } else {
    if (node.size() == 0) out << YAML::Flow;
    out << YAML::BeginMap;
    for (auto it = node.begin(); it != node.end(); ++it) {
      out << YAML::Key << it->first.Scalar() << YAML::Value;
      emit(out, it->second);
    }
    out << YAML::EndMap;
  }
}

}  // namespace

YAML::Node parse_yaml(const std::string& text, const std::string& origin) {
  return parse_checked(text, origin, nullptr);
}

ConfigFile load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check_user(in.good(), "cannot read config file '" + path + "'");
  // Reads one byte past the limit at most, so a huge file or a device like /dev/zero stops here.
  std::string text(kMaxDocumentBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  check_user(!in.bad(), "cannot read config file '" + path + "'");
  text.resize(static_cast<size_t>(in.gcount()));
  check_user(text.size() <= kMaxDocumentBytes,
             path + ": more than " + byte_size(kMaxDocumentBytes) +
                 "; a config file is limited to " + byte_size(kMaxDocumentBytes));
  ConfigFile file;
  file.path = path;
  file.package = package_header(text, path);
  YamlStats stats;
  YAML::Node root = parse_checked(text, path, &stats);
  file.nodes = stats.nodes;
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  check_user(root.IsMap(), location(path, root) +
                               ": a config file must be a mapping of keys, got a " +
                               kind_name(value_kind(root)));
  for (auto it = root.begin(); it != root.end(); ++it)
    check_user(it->first.IsScalar(), location(path, it->first) + ": config keys must be scalars");
  file.content = root;
  return file;
}

std::string to_yaml(const YAML::Node& node) {
  YAML::Emitter out;
  out.SetNullFormat(YAML::LowerNull);
  emit(out, node);
  std::string text = out.c_str();
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

std::string location(const std::string& path, const YAML::Node& node) {
  YAML::Mark mark = node.Mark();
  if (mark.is_null()) return path;
  return path + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace attnlab::config
