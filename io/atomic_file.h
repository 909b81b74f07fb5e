// Crash-safe file replacement: write `<path>.tmp`, fsync it, rename over `path`, fsync the
// directory. A crash at any point leaves either the old or the new content at `path`, never a mix.
// Used for checkpoints and the `latest`/`best` pointers. Folders (`attnlab import`, `export
// format=hf`) are written the same way: under a temporary name, renamed when complete.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace attnlab {

// Atomically replaces `path` with `data` (UserError naming the path on I/O failure, such as a full
// disk, after removing the temporary file; UserError for an empty path or a folder). A symbolic
// link is followed: its target is replaced and the link kept.
void write_file_atomic(const std::string& path, const std::string& data);

// fsyncs a directory so a rename inside it is durable.
void fsync_directory(const std::string& dir);

// UserError "<what>='<out>' already exists and is not empty; choose a new folder" unless `out` is
// absent or an empty folder (checked before expensive work, and again by write_new_folder).
void check_new_folder(const std::string& out, const std::string& what);

// Creates the folder `out` complete or not at all: `fill` writes into a hidden sibling
// `.<name>.partial-<pid>`, which is then renamed to `out` (replacing an empty `out`); if `fill`
// throws, the partial folder is removed and the exception propagates.
void write_new_folder(const std::string& out, const std::string& what,
                      const std::function<void(const std::filesystem::path& folder)>& fill);

// Whole file as bytes (UserError naming the path when unreadable).
std::string read_file_bytes(const std::string& path);

}  // namespace attnlab
