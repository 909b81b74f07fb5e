// SpamAssassin loader (see spam_assassin.h).
#include "data/corpora/spam_assassin.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <sstream>

#include "common/error.h"
#include "data/data_cache.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Where the header block ends: the first empty line ("\n\n" or "\r\n\r\n"); returns the offset
// of the body's first byte and sets `header_end` to the end of the last header line.
size_t body_start(const std::string& message, size_t* header_end) {
  for (size_t i = 0; i < message.size(); ++i) {
    if (message[i] != '\n') continue;
    size_t next = i + 1;
    if (next < message.size() && message[next] == '\r') ++next;
    if (next < message.size() && message[next] == '\n') {
      *header_end = i;
      return next + 1;
    }
    if (next >= message.size()) break;
  }
  *header_end = message.size();
  return message.size();
}

}  // namespace

const std::vector<std::string>& spam_assassin_classes() {
  static const std::vector<std::string> classes = {"easy_ham", "hard_ham", "spam"};
  return classes;
}

int64_t spam_assassin_label(const std::string& group) {
  static const std::regex pattern(R"((easy|hard)?[-_]?(ham|spam)([-_]\d+)?)");
  std::smatch match;
  const std::string name = lower(group);
  if (!std::regex_match(name, match, pattern)) return -1;
  if (match[2] == "spam") return match[1].length() == 0 ? 2 : -1;
  if (match[1] == "easy") return 0;
  if (match[1] == "hard") return 1;
  return -1;
}

std::string email_text(const std::string& message, const std::vector<std::string>& keep_headers) {
  size_t header_end = 0;
  const size_t body = body_start(message, &header_end);
  std::vector<std::string> wanted;
  for (const auto& name : keep_headers) wanted.push_back(lower(name) + ":");
  std::string kept;
  bool keeping = false;  // inside a kept header (continuation lines start with blank space)
  std::istringstream lines(message.substr(0, header_end));
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const bool continuation = !line.empty() && (line[0] == ' ' || line[0] == '\t');
    if (!continuation) {
      const std::string head = lower(line.substr(0, line.find(':') + 1));
      keeping = std::find(wanted.begin(), wanted.end(), head) != wanted.end();
    }
    if (keeping) kept += line + "\n";
  }
  return kept + (kept.empty() ? "" : "\n") + message.substr(body);
}

LabelledDataset load_spam_assassin(const LabelledDatasetOptions& options) {
  const fs::path data = ensure_dataset(options.cache, "spam-assassin") / "data";
  LabelledDataset dataset;
  dataset.classes = spam_assassin_classes();
  // Per class, files sorted by "group/file" so max_per_class takes a fixed subset.
  std::map<int64_t, std::vector<std::pair<std::string, fs::path>>> files;
  for (const auto& group : fs::directory_iterator(data)) {
    if (!group.is_directory()) continue;
    const int64_t label = spam_assassin_label(group.path().filename().string());
    if (label < 0) continue;
    for (const auto& file : fs::directory_iterator(group.path())) {
      if (!file.is_regular_file() || file.path().extension() != ".txt") continue;
      files[label].emplace_back(
          group.path().filename().string() + "/" + file.path().filename().string(), file.path());
    }
  }
  for (auto& [label, members] : files) {
    std::sort(members.begin(), members.end());
    if (options.max_per_class > 0 && members.size() > static_cast<size_t>(options.max_per_class))
      members.resize(static_cast<size_t>(options.max_per_class));
    for (const auto& [name, path] : members)
      dataset.examples.push_back({name, email_text(read_file(path), options.headers), label});
  }
  for (int64_t c = 0; c < static_cast<int64_t>(dataset.classes.size()); ++c)
    check_user(files.count(c) && !files.at(c).empty(),
               "SpamAssassin package " + data.string() + " has no messages of class '" +
                   dataset.classes[c] + "' (expected folders easy-ham-N, hard-ham-N, spam-N)");
  return dataset;
}

}  // namespace attnlab
