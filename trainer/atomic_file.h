// Crash-safe file replacement: write `<path>.tmp`, fsync it, rename over `path`, fsync the
// directory. A crash at any point leaves either the old or the new content at `path`, never a mix.
// Used for checkpoints and the `latest`/`best` pointers.
#pragma once

#include <string>

namespace attnlab {

// Atomically replaces `path` with `data` (UserError naming the path on I/O failure).
void write_file_atomic(const std::string& path, const std::string& data);

// fsyncs a directory so a rename inside it is durable.
void fsync_directory(const std::string& dir);

// Whole file as bytes (UserError naming the path when unreadable).
std::string read_file_bytes(const std::string& path);

}  // namespace attnlab
