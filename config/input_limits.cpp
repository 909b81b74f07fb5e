// Implementation of input_limits.h. The YAML check runs yaml-cpp's event parser (no tree is
// built) and keeps, per open map or list, its expanded size and height, and per anchor the size
// and height of its value, so an alias costs what its expansion would and a reference to an
// anchor that is still open is a recursive alias.
#include "config/input_limits.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <sstream>
#include <vector>

#include "common/error.h"

namespace attnlab::config {
namespace {

class LimitChecker : public YAML::EventHandler {
 public:
  explicit LimitChecker(const std::string& origin) : origin_(origin) {}

  YamlStats stats() const { return {total_nodes_, max_depth_}; }

  // A map or list used as a key is reported once the whole document has parsed, so a syntax
  // error (an unclosed "[[" can look like a key to yaml-cpp) is reported as such first.
  void finish() const {
    if (!key_error_.is_null()) fail(key_error_, "mapping keys must be scalars, not maps or lists");
  }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add_value(mark, {1, 0, false}, anchor);
  }

  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    if (at_key() && value.size() > kMaxKeyLength)
      fail(mark, "a key of " + std::to_string(value.size()) + " bytes; keys are limited to " +
                     std::to_string(kMaxKeyLength));
    add_value(mark, {1, 0, false}, anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (anchor == 0 || anchor > anchors_.size()) return;  // yaml-cpp reports unknown anchors
    const Anchor& target = anchors_[anchor - 1];
    if (target.open)
      fail(mark,
           "alias '*" + target.name + "' refers to a value that contains it (a recursive alias)");
    add_value(mark, target.value, 0);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, false);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor, true);
  }
  void OnMapEnd() override { close(); }

  void OnAnchor(const YAML::Mark&, const std::string& name) override {
    anchors_.push_back({name, {}, false});  // yaml-cpp numbers anchors 1, 2, ... in this order
  }

 private:
  struct Value {
    size_t nodes;
    int height;  // levels of maps/lists inside, itself included
    bool container;
  };
  struct Anchor {
    std::string name;
    Value value;
    bool open;
  };
  struct Frame {
    YAML::Mark mark;
    YAML::anchor_t anchor;
    bool is_map;
    size_t children = 0;
    Value value{1, 1, true};
  };

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& what) const {
    std::string where = origin_;
    if (!mark.is_null())
      where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    throw UserError(where + ": " + what);
  }

  bool at_key() const {
    return !stack_.empty() && stack_.back().is_map && stack_.back().children % 2 == 0;
  }

  // Accounts one scalar, null or alias (with its whole target) to the document and its parent.
  void add_value(const YAML::Mark& mark, const Value& value, YAML::anchor_t anchor) {
    if (value.container && at_key() && key_error_.is_null()) key_error_ = mark;
    const int depth = static_cast<int>(stack_.size()) + value.height;
    if (depth > kMaxDepth)
      fail(mark, "values nest more than " + std::to_string(kMaxDepth) + " levels");
    max_depth_ = std::max(max_depth_, depth);
    total_nodes_ += value.nodes;
    if (total_nodes_ > kMaxNodes)
      fail(mark, "the document expands to more than " + std::to_string(kMaxNodes) +
                     " values (an alias counts with its whole target; a YAML alias bomb?)");
    if (anchor != 0 && anchor <= anchors_.size()) anchors_[anchor - 1].value = value;
    if (!stack_.empty()) add_to_parent(mark, value);
  }

  void add_to_parent(const YAML::Mark& mark, const Value& value) {
    Frame& parent = stack_.back();
    ++parent.children;
    if (parent.is_map && parent.children / 2 > kMaxMapEntries)
      fail(mark, "a mapping with more than " + std::to_string(kMaxMapEntries) + " keys");
    parent.value.nodes += value.nodes;
    parent.value.height = std::max(parent.value.height, value.height + 1);
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor, bool is_map) {
    if (at_key() && key_error_.is_null()) key_error_ = mark;
    const int depth = static_cast<int>(stack_.size()) + 1;
    if (depth > kMaxDepth)
      fail(mark, "values nest more than " + std::to_string(kMaxDepth) + " levels");
    max_depth_ = std::max(max_depth_, depth);
    if (++total_nodes_ > kMaxNodes)
      fail(mark, "the document expands to more than " + std::to_string(kMaxNodes) + " values");
    if (anchor != 0 && anchor <= anchors_.size()) anchors_[anchor - 1].open = true;
    stack_.push_back({mark, anchor, is_map});
  }

  // The container itself was counted when it opened, its children as they were added.
  void close() {
    Frame frame = stack_.back();
    stack_.pop_back();
    if (frame.anchor != 0 && frame.anchor <= anchors_.size()) {
      anchors_[frame.anchor - 1].value = frame.value;
      anchors_[frame.anchor - 1].open = false;
    }
    if (!stack_.empty()) add_to_parent(frame.mark, frame.value);
  }

  const std::string& origin_;
  std::vector<Frame> stack_;
  std::vector<Anchor> anchors_;
  size_t total_nodes_ = 0;
  int max_depth_ = 0;
  YAML::Mark key_error_ = YAML::Mark::null_mark();
};

YamlStats scan(const std::string& text, const std::string& origin) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  LimitChecker checker(origin);
  parser.HandleNextDocument(checker);  // the first document, like YAML::Load
  checker.finish();
  return checker.stats();
}

}  // namespace

std::string byte_size(size_t bytes) {
  if (bytes >= (size_t{1} << 20) && bytes % (size_t{1} << 20) == 0)
    return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

std::string preview(const std::string& text) {
  return text.size() <= 120 ? text : text.substr(0, 100) + "...";
}

YamlStats check_yaml_text(const std::string& text, const std::string& origin) {
  check_user(text.size() <= kMaxDocumentBytes, origin + ": " + std::to_string(text.size()) +
                                                   " bytes; a config document is limited to " +
                                                   byte_size(kMaxDocumentBytes));
  // yaml-cpp reports a quoted scalar that runs into the end of the input only when the input
  // does not end with a line break, so the check scans the text without its trailing blanks.
  size_t end = text.find_last_not_of(" \t\r\n");
  std::string trimmed = text.substr(0, end == std::string::npos ? 0 : end + 1);
  try {
    return scan(trimmed, origin);
  } catch (const YAML::ParserException& e) {
    if (e.msg == YAML::ErrorMsg::EOF_IN_SCALAR)
      throw UserError(origin + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) +
                      ": YAML syntax error: a quoted string is not closed before the end of the "
                      "file (unclosed quote)");
  }
  // Any other syntax error: scan the text as given; yaml-cpp's exception is the caller's to
  // report.
  return scan(text, origin);
}

void check_key_path(const std::string& key, const std::string& context) {
  size_t parts =
      1 + std::count_if(key.begin(), key.end(), [](char c) { return c == '.' || c == '/'; });
  check_user(parts <= static_cast<size_t>(kMaxDepth),
             context + ": the key has " + std::to_string(parts) + " parts; keys nest at most " +
                 std::to_string(kMaxDepth) + " levels");
  check_user(key.size() <= kMaxKeyLength, context + ": the key is " + std::to_string(key.size()) +
                                              " bytes long; keys are limited to " +
                                              std::to_string(kMaxKeyLength));
}

bool valid_option_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxKeyLength || name[0] == '.') return false;
  for (char c : name)
    if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
  return true;
}

}  // namespace attnlab::config
