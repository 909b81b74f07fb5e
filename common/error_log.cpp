// The run directory's error log (see error_log.h).
#include "common/error_log.h"

#include <ctime>
#include <fstream>
#include <mutex>

namespace attnlab {

namespace {

std::mutex& log_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::string& log_directory() {
  static std::string directory;
  return directory;
}

}  // namespace

void set_error_log_directory(const std::string& run_dir) {
  std::lock_guard<std::mutex> lock(log_mutex());
  log_directory() = run_dir;
}

std::string error_log_directory() {
  std::lock_guard<std::mutex> lock(log_mutex());
  return log_directory();
}

std::string append_error_log(const std::string& report) {
  const std::string dir = error_log_directory();
  if (dir.empty()) return "";
  const std::string path = dir + "/" + kErrorLogName;
  try {
    std::ofstream out(path, std::ios::app);
    if (!out) return "";
    char stamp[32] = "";
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    if (gmtime_r(&now, &utc)) std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &utc);
    out << "=== " << stamp << "\n" << report;
    if (report.empty() || report.back() != '\n') out << "\n";
    out.flush();
    return out ? path : "";
  } catch (...) {
    return "";
  }
}

}  // namespace attnlab
