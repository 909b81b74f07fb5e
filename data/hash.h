// Small non-cryptographic hashes for cache keys and fingerprints (FNV-1a, 64 bit): stable across
// platforms and runs, unlike std::hash, so cache directory names stay valid between builds.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace attnlab {

class Fnv64 {
 public:
  Fnv64& update(const void* data, size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) {
      state_ ^= bytes[i];
      state_ *= 0x100000001b3ULL;
    }
    return *this;
  }
  // Length-prefixed, so update("ab").update("c") differs from update("a").update("bc").
  Fnv64& update(const std::string& text) {
    const uint64_t size = text.size();
    update(&size, sizeof(size));
    return update(text.data(), text.size());
  }
  uint64_t digest() const { return state_; }
  // The first `digits` hex digits of the digest.
  std::string hex(int digits = 16) const {
    char buffer[17];
    std::snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(state_));
    return std::string(buffer, static_cast<size_t>(digits));
  }

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;
};

}  // namespace attnlab
