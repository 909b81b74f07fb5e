// Sweep aggregation into summary.csv / summary.md / summary.png; see sweep_summary.h.
#include "trainer/launcher/sweep_summary.h"

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

// Plots with the project Python + matplotlib; returns false when unavailable or failing.
bool write_plot(const fs::path& sweep_dir, const SweepSummary& summary,
                const std::vector<JobRecord>& jobs, const std::map<int, std::string>& job_config) {
  const std::string python = project_python();
  if (summary.metrics.empty() || !fs::exists(python)) return false;
  json data;
  data["metric"] = summary.metrics.front();
  data["rows"] = json::array();
  for (const auto& row : summary.rows) {
    json item = {{"name", row.configuration}, {"n", row.jobs.size()}};
    auto mean = row.mean.find(summary.metrics.front());
    item["mean"] = mean == row.mean.end() ? json(nullptr) : json(mean->second);
    item["std"] = row.stddev.count(summary.metrics.front())
                      ? json(row.stddev.at(summary.metrics.front()))
                      : json(0.0);
    data["rows"].push_back(item);
  }
  data["jobs"] = json::array();
  for (const auto& job : jobs) {
    if (!job_config.count(job.index)) continue;
    data["jobs"].push_back(
        {{"config", job_config.at(job.index)}, {"metrics", (job.dir / "metrics.jsonl").string()}});
  }
  const fs::path data_path = sweep_dir / ".summary_plot.json";
  const fs::path script_path = sweep_dir / ".summary_plot.py";
  std::ofstream(data_path) << data.dump();
  std::ofstream(script_path) << R"PY(
import json, os, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
data = json.load(open(sys.argv[1]))
rows = [r for r in data["rows"] if r["mean"] is not None]
curve_key = None
curves = {}
for job in data["jobs"]:
    if not os.path.exists(job["metrics"]):
        continue
    records = [json.loads(l) for l in open(job["metrics"]) if l.strip()]
    for key in ("val/loss", "train/loss"):
        points = [(r["step"], r[key]) for r in records if key in r]
        if points and curve_key in (None, key):
            curve_key = key
            curves.setdefault(job["config"], []).append(points)
            break
fig, axes = plt.subplots(1, 2 if curves else 1, figsize=(12 if curves else 7, 4.5))
axes = list(axes) if curves else [axes]
names = [r["name"] for r in rows]
axes[0].barh(range(len(rows)), [r["mean"] for r in rows], xerr=[r["std"] for r in rows],
             color="tab:blue", alpha=0.8, capsize=3)
axes[0].set_yticks(range(len(rows)))
axes[0].set_yticklabels(names, fontsize=8)
axes[0].invert_yaxis()
axes[0].set_xlabel(data["metric"] + " (mean ± std over seeds)")
if curves:
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, runs) in enumerate(curves.items()):
        for j, points in enumerate(runs):
            steps, values = zip(*points)
            axes[1].plot(steps, values, color=colors[i % len(colors)], alpha=0.8,
                         label=name if j == 0 else None)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel(curve_key)
    axes[1].legend(fontsize=7)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
)PY";
  const fs::path plot_path = sweep_dir / "summary.png";
  const std::string command = "'" + python + "' '" + script_path.string() + "' '" +
                              data_path.string() + "' '" + plot_path.string() + "' >/dev/null 2>&1";
  const bool ok = std::system(command.c_str()) == 0 && fs::exists(plot_path);
  fs::remove(data_path);
  fs::remove(script_path);
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

SweepSummary summarize_sweep(const std::string& sweep_dir_text, bool plot) {
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

  for (auto& row : summary.rows) {
    for (const auto& metric : summary.metrics) {
      std::vector<double> xs;
      for (const auto& job_metrics : values[row.configuration]) {
        auto it = job_metrics.find(metric);
        if (it != job_metrics.end()) xs.push_back(it->second);
      }
      if (xs.empty()) continue;
      double mean = 0.0;
      for (double x : xs) mean += x;
      mean /= xs.size();
      double var = 0.0;
      for (double x : xs) var += (x - mean) * (x - mean);
      row.mean[metric] = mean;
      row.stddev[metric] = xs.size() > 1 ? std::sqrt(var / (xs.size() - 1)) : 0.0;
    }
  }

  // CSV: configuration, n, missing, then <metric>_mean, <metric>_std.
  std::ostringstream csv;
  csv << "configuration,n,missing";
  for (const auto& metric : summary.metrics) csv << "," << metric << "_mean," << metric << "_std";
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
    csv << "\n";
  }
  // Markdown: mean ± std per metric.
  std::ostringstream md;
  md << "| configuration | n |";
  for (const auto& metric : summary.metrics) md << " " << metric << " |";
  md << "\n|---|---|";
  for (size_t i = 0; i < summary.metrics.size(); ++i) md << "---|";
  md << "\n";
  for (const auto& row : summary.rows) {
    md << "| " << row.configuration << " | " << row.jobs.size();
    if (row.missing) md << " (+" << row.missing << " missing)";
    md << " |";
    for (const auto& metric : summary.metrics) {
      if (row.mean.count(metric))
        md << " " << format_number(row.mean.at(metric)) << " ± "
           << format_number(row.stddev.at(metric)) << " |";
      else
        md << " — |";
    }
    md << "\n";
  }
  summary.markdown = md.str();
  summary.csv_path = (sweep_dir / "summary.csv").string();
  summary.markdown_path = (sweep_dir / "summary.md").string();
  std::ofstream(summary.csv_path) << csv.str();
  std::ofstream(summary.markdown_path) << "# Sweep summary: " << sweep_dir.string() << "\n\n"
                                       << summary.markdown;
  if (plot && write_plot(sweep_dir, summary, jobs, job_config))
    summary.plot_path = (sweep_dir / "summary.png").string();
  return summary;
}

}  // namespace attnlab
