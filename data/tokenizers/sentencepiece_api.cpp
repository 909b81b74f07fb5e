// Loads the SentencePiece plugin (see sentencepiece_api.h): once per process, deep-bound and local.
#include "data/tokenizers/sentencepiece_api.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "common/error.h"

namespace attnlab {

namespace {

constexpr const char* kPluginName = "libattnlab_sentencepiece.so";

// The folder of the executable or shared library that holds this function.
std::filesystem::path own_folder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_folder), &info) == 0 || info.dli_fname == nullptr)
    return {};
  std::error_code error;
  const auto path = std::filesystem::canonical(info.dli_fname, error);
  return error ? std::filesystem::path(info.dli_fname).parent_path() : path.parent_path();
}

}  // namespace

const SentencePieceApi& sentencepiece_api() {
  static std::once_flag once;
  static const SentencePieceApi* api = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    const char* env = std::getenv("ATTNLAB_SENTENCEPIECE_PLUGIN");
    const std::string path =
        env != nullptr && *env ? std::string(env) : (own_folder() / kPluginName).string();
    int flags = RTLD_NOW | RTLD_LOCAL;
#if !defined(__SANITIZE_ADDRESS__)
    flags |= RTLD_DEEPBIND;  // AddressSanitizer refuses deep binding
#endif
    void* handle = dlopen(path.c_str(), flags);
    if (handle == nullptr) {
      failure = "cannot load the SentencePiece plugin '" + path +
                "' (tokenizer=bpe): " + dlerror() +
                "; rebuild with scripts/setup.sh or set ATTNLAB_SENTENCEPIECE_PLUGIN";
      return;
    }
    using Entry = const SentencePieceApi* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "attnlab_sentencepiece_api"));
    if (entry == nullptr) {
      failure = "'" + path + "' is not attnlab's SentencePiece plugin";
      return;
    }
    api = entry();
  });
  if (api == nullptr) throw UserError(failure);
  return *api;
}

}  // namespace attnlab
