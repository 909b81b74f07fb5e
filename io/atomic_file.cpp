// POSIX implementation of atomic_file.h (open/write/fsync/rename).
#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace attnlab {
namespace {

[[noreturn]] void io_fail(const std::string& what, const std::string& path) {
  throw UserError(what + " '" + path + "': " + std::strerror(errno));
}

}  // namespace

void fsync_directory(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) io_fail("cannot open directory", dir);
  ::fsync(fd);  // some filesystems refuse fsync on directories; durability is best effort there
  ::close(fd);
}

void check_new_folder(const std::string& out, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code error;
  check_user(!fs::exists(out, error) || (fs::is_directory(out, error) && fs::is_empty(out, error)),
             what + "='" + out + "' already exists and is not empty; choose a new folder");
}

void write_new_folder(const std::string& out, const std::string& what,
                      const std::function<void(const std::filesystem::path& folder)>& fill) {
  namespace fs = std::filesystem;
  check_new_folder(out, what);
  const fs::path final_path = fs::absolute(out);
  const fs::path partial = final_path.parent_path() / ("." + final_path.filename().string() +
                                                       ".partial-" + std::to_string(::getpid()));
  std::error_code error;
  fs::remove_all(partial, error);
  try {
    fs::create_directories(partial);
    fill(partial);
    if (fs::exists(final_path, error)) fs::remove(final_path);  // the empty folder
    fs::rename(partial, final_path);
  } catch (...) {
    fs::remove_all(partial, error);
    throw;
  }
  fsync_directory(final_path.parent_path().string());
}

namespace {

// `path` with its symbolic links followed (also a dangling one, to the file it names), so a file
// written through a link replaces the link's target and keeps the link.
std::string link_target(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path current = path;
  std::error_code error;
  for (int hops = 0; hops < 40 && fs::is_symlink(current, error); ++hops) {
    const fs::path next = fs::read_symlink(current, error);
    if (error) break;
    current = next.is_absolute() ? next : current.parent_path() / next;
  }
  return current.string();
}

}  // namespace

void write_file_atomic(const std::string& requested_path, const std::string& data) {
  namespace fs = std::filesystem;
  check_user(!requested_path.empty(), "cannot write a file with an empty name");
  const std::string path = link_target(requested_path);
  std::error_code error;
  check_user(!fs::is_directory(path, error),
             "cannot write '" + requested_path + "': it is a folder (name a file)");
  std::string tmp = path + ".tmp";
  // On any failure (a full disk, a rename refused) the temporary file goes too.
  auto fail = [&](const std::string& what, const std::string& which) {
    const int saved = errno;
    std::error_code ignored;
    fs::remove(tmp, ignored);
    errno = saved;
    io_fail(what, which);
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_fail("cannot create", tmp);
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      errno = saved;
      fail("cannot write", tmp);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    fail("cannot fsync", tmp);
  }
  if (::close(fd) != 0) fail("cannot write", tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename into", path);
  fsync_directory(std::filesystem::path(path).parent_path().string());
}

std::string read_file_bytes(const std::string& path) {
  // A device or FIFO (/dev/zero) would be read forever.
  if (!std::filesystem::is_regular_file(path)) {
    throw UserError(std::filesystem::exists(path) ? "'" + path + "' is not a regular file"
                                                  : "cannot read file '" + path + "'");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError("cannot read file '" + path + "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace attnlab
