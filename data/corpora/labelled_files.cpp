// See labelled_files.h.
#include "data/corpora/labelled_files.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "data/data_cache.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

struct Row {
  std::string text, label;
  int64_t line = 0;  // where the row starts (1-based, the header is line 1 of a CSV)
};

// RFC 4180 records of `data` with `delimiter`; each record's first line number.
std::vector<std::pair<std::vector<std::string>, int64_t>> csv_records(const std::string& data,
                                                                      char delimiter,
                                                                      const std::string& where) {
  std::vector<std::pair<std::vector<std::string>, int64_t>> records;
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false, field_started = false;
  int64_t line = 1, record_line = 1;
  size_t i = data.size() >= 3 && data.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  auto end_record = [&] {
    fields.push_back(std::move(field));
    field.clear();
    field_started = false;
    const bool blank = fields.size() == 1 && fields[0].empty();
    if (!blank) records.emplace_back(std::move(fields), record_line);
    fields.clear();
  };
  for (; i < data.size(); ++i) {
    const char c = data[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < data.size() && data[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = field_started = true;
    } else if (c == delimiter) {
      fields.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
      end_record();
      record_line = ++line;
    } else {
      field += c;
      field_started = true;
    }
  }
  check_user(!quoted, where + ": a quoted field opened on or after line " +
                          std::to_string(record_line) + " is never closed");
  if (field_started || !fields.empty()) end_record();
  return records;
}

std::vector<Row> read_csv(const fs::path& path, char delimiter, const LabelledDatasetOptions& o) {
  const auto records = csv_records(read_file(path), delimiter, path.string());
  check_user(!records.empty(), path.string() + ": empty file (expected a header row naming the '" +
                                   o.text_key + "' and '" + o.label_key + "' columns)");
  const auto& header = records.front().first;
  auto column = [&](const std::string& name, const char* key) {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it != header.end()) return static_cast<size_t>(it - header.begin());
    std::string columns;
    for (const auto& h : header) columns += (columns.empty() ? "" : ", ") + h;
    // Binary or non-text input: show a clean excerpt, not raw bytes.
    bool printable = true;
    for (unsigned char c : columns) printable = printable && (c >= 0x20 || c == '\t') && c < 0x7f;
    if (!printable)
      columns = "(not printable text: a binary file, or not a CSV file?)";
    else if (columns.size() > 200)
      columns = columns.substr(0, 200) + "...";
    throw UserError(path.string() + ": no column '" + name + "' (set by data." + key +
                    "); the header has: " + columns);
  };
  const size_t text_column = column(o.text_key, "text_key");
  const size_t label_column = column(o.label_key, "label_key");
  std::vector<Row> rows;
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& [fields, line] = records[r];
    check_user(fields.size() == header.size(),
               path.string() + ":" + std::to_string(line) + ": " + std::to_string(fields.size()) +
                   " fields, the header has " + std::to_string(header.size()));
    rows.push_back({fields[text_column], fields[label_column], line});
  }
  return rows;
}

std::vector<Row> read_jsonl(const fs::path& path, const LabelledDatasetOptions& o) {
  std::ifstream in(path, std::ios::binary);
  check_user(in.good(), "cannot read " + path.string());
  std::vector<Row> rows;
  std::string text;
  for (int64_t number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(number);
    nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    check_user(value.is_object(), where + ": not a JSON object");
    const auto body = value.find(o.text_key);
    check_user(body != value.end() && body->is_string(),
               where + ": no string \"" + o.text_key + "\" (the text key is data.text_key)");
    const auto label = value.find(o.label_key);
    check_user(label != value.end(),
               where + ": no \"" + o.label_key + "\" (the label key is data.label_key)");
    check_user(label->is_string() || label->is_number_integer(),
               where + ": \"" + o.label_key + "\" is " + label->dump().substr(0, 60) +
                   ", expected a string or an integer");
    rows.push_back({body->get<std::string>(),
                    label->is_string() ? label->get<std::string>() : label->dump(), number});
  }
  check_user(!in.bad(), "cannot read " + path.string());
  return rows;
}

std::vector<Row> read_rows(const fs::path& path, const LabelledDatasetOptions& options) {
  const std::string ext = path.extension().string();
  if (ext == ".jsonl") return read_jsonl(path, options);
  if (ext == ".csv") return read_csv(path, ',', options);
  if (ext == ".tsv") return read_csv(path, '\t', options);
  throw UserError(path.string() +
                  ": labelled files must be .csv, .tsv or .jsonl (data.train / val / test)");
}

bool is_integer(const std::string& text) {
  if (text.empty() || text.size() > 18) return false;
  const size_t start = text[0] == '-' ? 1 : 0;
  return start < text.size() &&
         std::all_of(text.begin() + static_cast<std::ptrdiff_t>(start), text.end(), ::isdigit);
}

}  // namespace

LabelledDataset load_labelled_files(const LabelledDatasetOptions& options) {
  struct Loaded {
    std::string name;
    Row row;
    FixedSplit split;
  };
  std::vector<Loaded> loaded;
  std::map<std::string, std::string> first_seen;  // label -> where, for the error below
  for (const auto& [files, split] : {std::pair{&options.train_files, FixedSplit::kByFraction},
                                     std::pair{&options.val_files, FixedSplit::kVal},
                                     std::pair{&options.test_files, FixedSplit::kTest}}) {
    for (const auto& path : *files) {
      for (Row& row : read_rows(path, options)) {
        const std::string where = path.string() + ":" + std::to_string(row.line);
        check_user(!row.label.empty(),
                   where + ": empty label (column or key '" + options.label_key + "')");
        if (split == FixedSplit::kByFraction) first_seen.emplace(row.label, where);
        loaded.push_back(
            {path.filename().string() + ":" + std::to_string(row.line), std::move(row), split});
      }
    }
  }
  if (first_seen.empty()) {
    std::string files;
    for (size_t i = 0; i < options.train_files.size() && i < 3; ++i)
      files += (i ? ", " : "") + options.train_files[i].string();
    if (options.train_files.size() > 3) files += ", ...";
    throw UserError("config key 'data.train': " + files + " hold no labelled rows");
  }
  // Classes: the training files' labels, in numeric order when all are integers, else by bytes.
  LabelledDataset dataset;
  for (const auto& [label, where] : first_seen) dataset.classes.push_back(label);
  const bool numeric = std::all_of(dataset.classes.begin(), dataset.classes.end(), is_integer);
  if (numeric)
    std::sort(
        dataset.classes.begin(), dataset.classes.end(),
        [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  std::map<std::string, int64_t> id_of;
  for (size_t c = 0; c < dataset.classes.size(); ++c)
    id_of[dataset.classes[c]] = static_cast<int64_t>(c);
  std::vector<int64_t> taken(dataset.classes.size(), 0);
  for (auto& item : loaded) {
    const auto id = id_of.find(item.row.label);
    check_user(id != id_of.end(), item.name + ": label '" + item.row.label +
                                      "' never occurs in the data.train files, so the model "
                                      "has no class for it");
    if (options.max_per_class > 0 && item.split == FixedSplit::kByFraction &&
        taken[static_cast<size_t>(id->second)]++ >= options.max_per_class)
      continue;
    dataset.examples.push_back({item.name, std::move(item.row.text), id->second, item.split});
  }
  return dataset;
}

}  // namespace attnlab
