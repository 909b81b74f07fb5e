// The calls attnlab makes into libsentencepiece, through a plugin (libattnlab_sentencepiece.so,
// data/tokenizers/sentencepiece_plugin/) that is dlopen'ed with RTLD_LOCAL | RTLD_DEEPBIND instead
// of being linked. Why: Debian's libsentencepiece defines an absl::Flag object named
// FLAGS_minloglevel, and LibTorch's libc10 exports a 4-byte int of the same name. Linked into one
// process, the dynamic linker binds sentencepiece's constructor to libc10's int, which it
// overwrites together with the bytes after it (FLAGS_caffe2_use_fatal_for_enforce among them: every
// CAFFE_ENFORCE then aborted the process instead of throwing). Loaded deep-bound and local, the
// plugin's libsentencepiece binds its own symbols and LibTorch never sees them.
//
// The API passes std::string/std::vector: the plugin is built by this project with the same
// compiler and libstdc++.
#pragma once

#include <string>
#include <vector>

namespace attnlab {

struct SentencePieceApi {
  // Trains a model on `documents` (every non-empty line is a sentence) with trainer `args`;
  // returns "" and fills *model, or the error text.
  std::string (*train)(const std::string& args, const std::vector<std::string>& documents,
                       std::string* model);
  // A processor for a serialized model; nullptr with *error set when it cannot be read.
  void* (*load)(const std::string& model, std::string* error);
  void (*release)(void* processor);
  int (*piece_size)(void* processor);
  // Piece text, score and kind (0 normal, 1 control, 2 unknown, 3 byte, 4 unused) of `id`.
  void (*piece)(void* processor, int id, std::string* text, float* score, int* kind);
  // Encodes `text` into *ids; returns "" or the error text.
  std::string (*encode)(void* processor, const std::string& text, std::vector<int>* ids);
};

// The plugin's API, loaded on first use: $ATTNLAB_SENTENCEPIECE_PLUGIN, else
// libattnlab_sentencepiece.so next to the binary or library holding this code. UserError naming
// the path when it cannot be loaded.
const SentencePieceApi& sentencepiece_api();

}  // namespace attnlab
