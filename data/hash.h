// Small non-cryptographic hashes, stable across platforms and runs (unlike std::hash): FNV-1a 64
// for cache keys and fingerprints, so cache directory names stay valid between builds, and XXH64
// (xxHash's 64-bit hash, several GB/s) for checkpoint tensors, which are hashed at every save and
// load.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
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

// XXH64 of `size` bytes with `seed` (the reference algorithm, little-endian reads; equals
// xxhash.xxh64(data, seed).intdigest() in Python).
inline uint64_t xxh64(const void* data, size_t size, uint64_t seed = 0) {
  constexpr uint64_t kP1 = 11400714785074694791ULL, kP2 = 14029467366897019727ULL,
                     kP3 = 1609587929392839161ULL, kP4 = 9650029242287828579ULL,
                     kP5 = 2870177450012600261ULL;
  auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  auto read64 = [](const unsigned char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  auto round = [&](uint64_t acc, uint64_t input) { return rotl(acc + input * kP2, 31) * kP1; };
  auto merge = [&](uint64_t acc, uint64_t value) { return (acc ^ round(0, value)) * kP1 + kP4; };
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* const end = p + size;
  uint64_t h;
  if (size >= 32) {
    uint64_t v1 = seed + kP1 + kP2, v2 = seed + kP2, v3 = seed, v4 = seed - kP1;
    for (; p + 32 <= end; p += 32) {
      v1 = round(v1, read64(p));
      v2 = round(v2, read64(p + 8));
      v3 = round(v3, read64(p + 16));
      v4 = round(v4, read64(p + 24));
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = merge(merge(merge(merge(h, v1), v2), v3), v4);
  } else {
    h = seed + kP5;
  }
  h += static_cast<uint64_t>(size);
  for (; p + 8 <= end; p += 8) h = rotl(h ^ round(0, read64(p)), 27) * kP1 + kP4;
  if (p + 4 <= end) {
    uint32_t word;
    std::memcpy(&word, p, 4);
    h = rotl(h ^ (static_cast<uint64_t>(word) * kP1), 23) * kP2 + kP3;
    p += 4;
  }
  for (; p < end; ++p) h = rotl(h ^ (static_cast<uint64_t>(*p) * kP5), 11) * kP1;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

}  // namespace attnlab
