// SHA-256 (FIPS 180-4) of bytes and files, to check the data cache's downloaded files against the
// manifest scripts/fetch_data.sh writes with `sha256sum` when it unpacks a verified tarball. Plain
// portable C++: the cache is hashed once per process, a few MB/s more would not matter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace attnlab {

class Sha256 {
 public:
  Sha256();
  Sha256& update(const void* data, size_t size);
  Sha256& update(const std::string& text) { return update(text.data(), text.size()); }
  // The digest as 64 lowercase hex digits; the object must not be updated afterwards.
  std::string hex();

 private:
  void compress(const unsigned char* block);
  uint32_t state_[8];
  unsigned char buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// SHA-256 of a whole file as hex; UserError naming the file when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace attnlab
