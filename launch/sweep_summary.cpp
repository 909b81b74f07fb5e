// Sweep aggregation into summary.csv / summary.md / summary.png; see sweep_summary.h.
#include "launch/sweep_summary.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/statistics.h"
#include "common/subprocess.h"

namespace attnlab {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct JobRecord {
  int index = 0;
  std::vector<std::string> overrides;
  fs::path dir;
};

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

std::string override_key(const std::string& override_text) {
  std::string key = override_text.substr(0, override_text.find('='));
  while (!key.empty() && (key[0] == '+' || key[0] == '~')) key.erase(0, 1);
  return key;
}

std::vector<std::string> read_string_list(const YAML::Node& node) {
  std::vector<std::string> out;
  if (node && node.IsSequence())
    for (const auto& item : node) out.push_back(item.as<std::string>());
  return out;
}

// Jobs from multirun.yaml, else from numbered sub-directories with overrides.yaml.
std::vector<JobRecord> find_jobs(const fs::path& sweep_dir) {
  std::vector<JobRecord> jobs;
  const fs::path multirun = sweep_dir / "multirun.yaml";
  if (fs::exists(multirun)) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(multirun.string());
    } catch (const YAML::Exception& error) {
      throw UserError("cannot parse " + multirun.string() + ": " + error.what());
    }
    for (const auto& entry : root["jobs"]) {
      JobRecord job;
      job.index = entry["index"].as<int>();
      job.overrides = read_string_list(entry["overrides"]);
      job.dir =
          sweep_dir / (entry["dir"] ? entry["dir"].as<std::string>() : std::to_string(job.index));
      jobs.push_back(job);
    }
    return jobs;
  }
  if (!fs::is_directory(sweep_dir)) return jobs;
  for (const auto& entry : fs::directory_iterator(sweep_dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit))
      continue;
    JobRecord job;
    job.index = std::stoi(name);
    job.dir = entry.path();
    if (fs::exists(job.dir / "overrides.yaml"))
      job.overrides = read_string_list(YAML::LoadFile((job.dir / "overrides.yaml").string()));
    jobs.push_back(job);
  }
  std::sort(jobs.begin(), jobs.end(),
            [](const JobRecord& a, const JobRecord& b) { return a.index < b.index; });
  return jobs;
}

// Final numeric metrics of one job: result.json, else the last value of each key in
// metrics.jsonl. Empty when the job has neither.
std::map<std::string, double> final_metrics(const fs::path& job_dir) {
  std::map<std::string, double> metrics;
  std::ifstream result(job_dir / "result.json");
  if (result) {
    json data = json::parse(result, nullptr, /*allow_exceptions=*/false);
    if (data.is_object())
      for (const auto& [key, value] : data.items())
        if (value.is_number()) metrics[key] = value.get<double>();
    if (!metrics.empty()) return metrics;
  }
  std::ifstream lines(job_dir / "metrics.jsonl");
  std::string line;
  while (std::getline(lines, line)) {
    json record = json::parse(line, nullptr, false);
    if (!record.is_object()) continue;
    for (const auto& [key, value] : record.items())
      if (value.is_number()) metrics[key] = value.get<double>();
  }
  return metrics;
}

std::string format_number(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  return buffer;
}

// summary.md's rounding: `digits` significant digits, trailing zeros kept (4.000 next to 4.078
// says both are known to the same precision), without an exponent between 1e-4 and 1e15 (12345
// to 3 digits is "12300"); digits = 0: a whole number. Zero is "0".
std::string format_rounded(double value, int digits) {
  if (!std::isfinite(value)) return format_number(value);
  char buffer[64];
  if (digits == 0) {
    std::snprintf(buffer, sizeof(buffer), "%.0f", value);
    return std::string(buffer) == "-0" ? "0" : buffer;
  }
  if (value == 0) return "0";
  std::snprintf(buffer, sizeof(buffer), "%.*e", digits - 1, value);
  if (std::abs(value) < 1e-4 || std::abs(value) >= 1e15) return buffer;
  const double rounded = std::strtod(buffer, nullptr);
  const int exponent = static_cast<int>(std::floor(std::log10(std::abs(rounded))));
  std::snprintf(buffer, sizeof(buffer), "%.*f", std::max(0, digits - 1 - exponent), rounded);
  return buffer;
}

// How summary.md rounds a metric: counts (step, parameters, ...) to integers, rates (tokens/s,
// examples/s) to 3 significant digits, everything else (losses, perplexities, accuracies) to 4.
int metric_digits(const std::string& metric) {
  auto ends_with = [&](const std::string& suffix) {
    return metric.size() >= suffix.size() &&
           metric.compare(metric.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (metric == "step" || metric == "steps" || ends_with("parameters") || ends_with("params"))
    return 0;
  if (ends_with("_per_s") || ends_with("/s")) return 3;
  return 4;
}

std::string format_metric(double value, const std::string& metric) {
  return format_rounded(value, metric_digits(metric));
}

// The metrics (other than the headline one, which carries the interval and test columns) whose
// value is the same in every job of every row: summary.md lists them once above the table
// instead of as a column of "100 ± 0". None with fewer than two jobs.
std::vector<std::string> constant_metrics(const SweepSummary& summary) {
  std::vector<std::string> out;
  for (size_t i = 1; i < summary.metrics.size(); ++i) {
    const std::string& metric = summary.metrics[i];
    std::vector<double> all;
    bool everywhere = !summary.rows.empty();
    for (const auto& row : summary.rows) {
      const auto values = row.values.find(metric);
      everywhere = everywhere && values != row.values.end();
      if (values != row.values.end())
        all.insert(all.end(), values->second.begin(), values->second.end());
    }
    if (everywhere && all.size() >= 2 &&
        std::all_of(all.begin(), all.end(), [&](double v) { return v == all.front(); }))
      out.push_back(metric);
  }
  return out;
}

std::string csv_quote(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Column order: the usual headline metrics first, then the rest alphabetically.
std::vector<std::string> order_metrics(const std::map<std::string, int>& seen) {
  const std::vector<std::string> preferred = {"val_loss",   "val_perplexity", "val_bits_per_byte",
                                              "train_loss", "tokens_per_s",   "step"};
  std::vector<std::string> out;
  for (const auto& name : preferred)
    if (seen.count(name)) out.push_back(name);
  for (const auto& [name, count] : seen)
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  return out;
}

// "+0.0123" / "-0.5": a difference of a metric's means with its sign, rounded like the metric.
std::string format_signed(double value, const std::string& metric) {
  return (value >= 0 ? "+" : "") + format_metric(value, metric);
}

// p-values: three significant digits, "< 1e-4" below that.
std::string format_p(double p) {
  if (p < 1e-4) return "< 1e-4";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3g", p);
  return buffer;
}

// The first step at which the job logged val/loss (or val_loss) <= target; NaN if never.
double first_step_at_or_below(const fs::path& job_dir, double target) {
  std::ifstream lines(job_dir / "metrics.jsonl");
  std::string line;
  while (std::getline(lines, line)) {
    const json record = json::parse(line, nullptr, false);
    if (!record.is_object() || !record.contains("step") || !record["step"].is_number()) continue;
    for (const char* key : {"val/loss", "val_loss"}) {
      if (record.contains(key) && record[key].is_number() && record[key].get<double>() <= target)
        return record["step"].get<double>();
    }
  }
  return std::nan("");
}

// The headline metric's 95% interval per row, and each row against the baseline row (the one
// whose label or configuration is `baseline`, else the first): difference of means and Welch's
// t-test.
void compare_with_baseline(SweepSummary& summary, const std::string& baseline) {
  if (summary.metrics.empty()) return;
  const std::string& metric = summary.metrics.front();
  for (auto& row : summary.rows) {
    const auto values = row.values.find(metric);
    row.ci95 = values == row.values.end() ? std::nan("")
                                          : confidence_half_width(mean_and_std(values->second));
    row.difference = std::nan("");
    row.p_value = std::nan("");
  }
  if (summary.rows.size() < 2) return;
  summary.baseline = 0;
  if (!baseline.empty()) {
    summary.baseline = -1;
    std::string labels;
    for (size_t i = 0; i < summary.rows.size(); ++i) {
      if (summary.rows[i].label == baseline || summary.rows[i].configuration == baseline)
        summary.baseline = static_cast<int>(i);
      labels += (labels.empty() ? "'" : ", '") + summary.rows[i].label + "'";
    }
    check_user(summary.baseline >= 0,
               "baseline='" + baseline + "' names no row of the sweep; rows: " + labels);
  }
  const SweepRow& base = summary.rows[static_cast<size_t>(summary.baseline)];
  const auto base_values = base.values.find(metric);
  for (auto& row : summary.rows) {
    const auto values = row.values.find(metric);
    if (values == row.values.end() || base_values == base.values.end()) continue;
    row.difference = row.mean.at(metric) - base.mean.at(metric);
    if (&row != &base) row.p_value = welch_t_test(values->second, base_values->second).p_value;
  }
}

// Labels each row by the overrides that differ between rows, and collects the ones all share.
void label_rows(SweepSummary& summary, const std::vector<JobRecord>& jobs) {
  // The configuration's overrides (in order) of each row, from its first job.
  std::map<std::string, std::vector<std::string>> overrides_of;
  for (const auto& job : jobs) {
    const std::string config = configuration_key(job.overrides);
    if (overrides_of.count(config)) continue;
    std::vector<std::string> kept;
    for (const auto& item : job.overrides)
      if (configuration_key({item}) != "(base)") kept.push_back(item);
    overrides_of[config] = kept;
  }
  // An override is shared when every row has exactly it.
  std::vector<std::string> shared;
  if (!summary.rows.empty()) {
    for (const auto& item : overrides_of[summary.rows.front().configuration]) {
      bool everywhere = summary.rows.size() > 1;
      for (const auto& row : summary.rows) {
        const auto& items = overrides_of[row.configuration];
        everywhere = everywhere && std::find(items.begin(), items.end(), item) != items.end();
      }
      if (everywhere) shared.push_back(item);
    }
  }
  for (const auto& item : shared) summary.common += (summary.common.empty() ? "" : " ") + item;
  for (auto& row : summary.rows) {
    for (const auto& item : overrides_of[row.configuration])
      if (std::find(shared.begin(), shared.end(), item) == shared.end())
        row.label += (row.label.empty() ? "" : " ") + item;
    if (row.label.empty()) row.label = row.configuration;
  }
}

// summary.png and summary_series.json, drawn by scripts/plot_metrics.py --sweep (the script
// `attnlab plot` runs too) from the rows' headline metric and every job's metrics.jsonl. False
// when the project Python or the script is missing, or the script fails (matplotlib missing,
// ...): its output is then kept in summary_plot.log.
bool write_plot(const fs::path& sweep_dir, const SweepSummary& summary,
                const std::vector<JobRecord>& jobs, const std::map<int, std::string>& job_config) {
  const std::string python = project_python();
  if (summary.metrics.empty() || !fs::exists(python)) return false;
  std::string script;
  try {
    script = project_script("plot_metrics.py");
  } catch (const UserError&) {
    return false;
  }
  json data;
  data["metric"] = summary.metrics.front();
  data["rows"] = json::array();
  for (const auto& row : summary.rows) {
    json item = {{"name", row.label}, {"n", row.jobs.size()}};
    auto mean = row.mean.find(summary.metrics.front());
    item["mean"] = mean == row.mean.end() ? json(nullptr) : json(mean->second);
    item["std"] = row.stddev.count(summary.metrics.front())
                      ? json(row.stddev.at(summary.metrics.front()))
                      : json(0.0);
    data["rows"].push_back(item);
  }
  data["common"] = summary.common;
  std::map<std::string, std::string> label_of;
  for (const auto& row : summary.rows) label_of[row.configuration] = row.label;
  data["jobs"] = json::array();
  for (const auto& job : jobs) {
    if (!job_config.count(job.index)) continue;
    data["jobs"].push_back({{"config", label_of[job_config.at(job.index)]},
                            {"metrics", (job.dir / "metrics.jsonl").string()}});
  }
  const fs::path data_path = sweep_dir / ".summary_plot.json";
  const fs::path plot_path = sweep_dir / "summary.png";
  const fs::path log_path = sweep_dir / "summary_plot.log";
  std::ofstream(data_path) << data.dump();
  fs::remove(log_path);
  int exit_code = -1;
  try {
    exit_code = run_process({python, script, "--sweep", data_path.string(), plot_path.string(),
                             "--series-json", (sweep_dir / "summary_series.json").string()},
                            log_path.string());
  } catch (const std::runtime_error&) {
  }
  fs::remove(data_path);
  const bool ok = exit_code == 0 && fs::exists(plot_path);
  if (ok) fs::remove(log_path);
  return ok;
}

}  // namespace

std::string configuration_key(const std::vector<std::string>& overrides) {
  std::string key;
  for (const auto& item : overrides) {
    const std::string name = override_key(item);
    if (name == "seed" || starts_with(name, "run.") || name == "run" ||
        starts_with(name, "launcher") || starts_with(name, "hydra."))
      continue;
    key += (key.empty() ? "" : " ") + item;
  }
  return key.empty() ? "(base)" : key;
}

SweepSummary summarize_sweep(const std::string& sweep_dir_text,
                             const SweepSummaryOptions& options) {
  const fs::path sweep_dir(sweep_dir_text);
  check_user(fs::is_directory(sweep_dir), "sweep directory '" + sweep_dir_text + "' not found");
  const std::vector<JobRecord> jobs = find_jobs(sweep_dir);
  check_user(!jobs.empty(), "'" + sweep_dir_text +
                                "' holds no sweep jobs (no multirun.yaml and no numbered job "
                                "directories)");

  SweepSummary summary;
  std::map<std::string, size_t> row_of;
  std::map<std::string, std::vector<std::map<std::string, double>>> values;
  std::map<std::string, int> seen;
  std::map<int, std::string> job_config;
  for (const auto& job : jobs) {
    const std::string config = configuration_key(job.overrides);
    if (!row_of.count(config)) {
      row_of[config] = summary.rows.size();
      summary.rows.push_back(SweepRow{config});
    }
    SweepRow& row = summary.rows[row_of[config]];
    const auto metrics = final_metrics(job.dir);
    if (metrics.empty()) {
      ++row.missing;
      continue;
    }
    row.jobs.push_back(job.index);
    job_config[job.index] = config;
    values[config].push_back(metrics);
    for (const auto& [name, value] : metrics) ++seen[name];
  }
  summary.metrics = order_metrics(seen);
  label_rows(summary, jobs);

  for (auto& row : summary.rows) {
    for (const auto& metric : summary.metrics) {
      std::vector<double> xs;
      for (const auto& job_metrics : values[row.configuration]) {
        auto it = job_metrics.find(metric);
        if (it != job_metrics.end()) xs.push_back(it->second);
      }
      if (xs.empty()) continue;
      const MeanStd stats = mean_and_std(xs);
      row.mean[metric] = stats.mean;
      row.stddev[metric] = stats.std;
      row.values[metric] = xs;
    }
  }
  compare_with_baseline(summary, options.baseline);
  summary.target = options.target;
  if (!std::isnan(options.target)) {
    std::map<int, fs::path> dir_of;
    for (const auto& job : jobs) dir_of[job.index] = job.dir;
    for (auto& row : summary.rows) {
      std::vector<double> steps;
      for (int job : row.jobs) {
        const double step = first_step_at_or_below(dir_of[job], options.target);
        if (!std::isnan(step)) steps.push_back(step);
      }
      row.reached = static_cast<int>(steps.size());
      row.target_step = steps.empty() ? std::nan("") : mean_and_std(steps).mean;
    }
  }

  // CSV: configuration, n, missing, then <metric>_mean, <metric>_std.
  std::ostringstream csv;
  csv << "configuration,n,missing";
  for (const auto& metric : summary.metrics) csv << "," << metric << "_mean," << metric << "_std";
  if (!summary.metrics.empty()) csv << ",ci95,difference,p_value,target_step,reached";
  csv << "\n";
  for (const auto& row : summary.rows) {
    csv << csv_quote(row.configuration) << "," << row.jobs.size() << "," << row.missing;
    for (const auto& metric : summary.metrics) {
      if (row.mean.count(metric))
        csv << "," << format_number(row.mean.at(metric)) << ","
            << format_number(row.stddev.at(metric));
      else
        csv << ",,";
    }
    if (!summary.metrics.empty()) {
      auto number = [](double v) { return std::isnan(v) ? std::string() : format_number(v); };
      csv << "," << number(row.ci95) << "," << number(row.difference) << "," << number(row.p_value)
          << "," << number(std::isnan(summary.target) ? NAN : row.target_step) << ","
          << (std::isnan(summary.target) ? std::string() : std::to_string(row.reached));
    }
    csv << "\n";
  }
  // Markdown: mean ± std per metric, rounded (metric_digits), the constant metrics once above
  // the table, and what the columns mean.
  std::ostringstream md;
  if (!summary.common.empty()) md << "Every row also has: " << summary.common << "\n\n";
  const std::vector<std::string> constant = constant_metrics(summary);
  std::vector<std::string> columns;
  for (const auto& metric : summary.metrics)
    if (std::find(constant.begin(), constant.end(), metric) == constant.end())
      columns.push_back(metric);
  if (!constant.empty()) {
    md << "constant:";
    for (size_t i = 0; i < constant.size(); ++i)
      md << (i ? ", " : " ") << constant[i] << " = "
         << format_metric(summary.rows.front().mean.at(constant[i]), constant[i]);
    md << "\n\n";
  }
  const bool compared = summary.baseline >= 0;
  const bool targeted = !std::isnan(summary.target);
  if (!columns.empty()) {
    md << "Cells are mean ± sample standard deviation over a row's n seeds (n − 1 in the "
          "denominator; ± 0 for a single seed): the spread of the seeds, not an interval for the "
          "mean. 95% CI: the Student-t 95% confidence interval of the mean of "
       << columns.front() << ", mean ± t(0.975, n − 1) · std / √n (— below 2 seeds).";
    if (compared)
      md << " Δ vs baseline: the row's mean minus the baseline row's; p (Welch): two-sided "
            "Welch's t-test of the row's seeds against the baseline's.";
    if (targeted)
      md << " Steps to target: the mean over the seeds that reached it of the first logged "
            "step with val/loss at or below it (reached/seeds).";
    md << " Rounded to 4 significant digits (tokens/s and other rates 3, steps and parameter "
          "counts whole); summary.csv holds the unrounded values of every column.\n\n";
  }
  md << "| configuration | n |";
  for (size_t i = 0; i < columns.size(); ++i) {
    md << " " << columns[i] << " |";
    if (i == 0) {
      md << " 95% CI |";
      if (compared) md << " Δ vs baseline | p (Welch) |";
      if (targeted)
        md << " steps to " << columns[0] << " ≤ " << format_number(summary.target) << " |";
    }
  }
  md << "\n|---|---|";
  const size_t extra = 1 + (compared ? 2 : 0) + (targeted ? 1 : 0);
  for (size_t i = 0; i < columns.size() + (columns.empty() ? 0 : extra); ++i) md << "---|";
  md << "\n";
  for (const auto& row : summary.rows) {
    md << "| " << row.label << " | " << row.jobs.size();
    if (row.missing) md << " (+" << row.missing << " missing)";
    md << " |";
    for (size_t i = 0; i < columns.size(); ++i) {
      const std::string& metric = columns[i];
      if (row.mean.count(metric))
        md << " " << format_metric(row.mean.at(metric), metric) << " ± "
           << format_metric(row.stddev.at(metric), metric) << " |";
      else
        md << " — |";
      if (i != 0) continue;
      const bool has = row.mean.count(metric) > 0;
      if (has && !std::isnan(row.ci95))
        md << " [" << format_metric(row.mean.at(metric) - row.ci95, metric) << ", "
           << format_metric(row.mean.at(metric) + row.ci95, metric) << "] |";
      else
        md << " — |";
      if (compared) {
        if (&row == &summary.rows[static_cast<size_t>(summary.baseline)])
          md << " baseline | |";
        else
          md << " " << (has ? format_signed(row.difference, metric) : "—") << " | "
             << (std::isnan(row.p_value) ? "—" : format_p(row.p_value)) << " |";
      }
      if (targeted)
        md << " " << (row.reached ? format_rounded(row.target_step, 0) : "—") << " (" << row.reached
           << "/" << row.jobs.size() << ") |";
    }
    md << "\n";
  }
  summary.markdown = md.str();
  summary.csv_path = (sweep_dir / "summary.csv").string();
  summary.markdown_path = (sweep_dir / "summary.md").string();
  std::ofstream(summary.csv_path) << csv.str();
  std::ofstream(summary.markdown_path) << "# Sweep summary: " << sweep_dir.string() << "\n\n"
                                       << summary.markdown;
  if (options.plot && write_plot(sweep_dir, summary, jobs, job_config))
    summary.plot_path = (sweep_dir / "summary.png").string();
  return summary;
}

}  // namespace attnlab
