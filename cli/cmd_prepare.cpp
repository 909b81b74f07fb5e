// `attnlab prepare [overrides]`: fetches the configured corpora, builds the tokenizer (training
// and caching a bpe model when needed) and writes the token shards — the same prepare_data()
// that `attnlab train` runs first — then prints where the shards are and what they hold.
// Re-running with the same config finds everything in place and returns at once.
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "config/config.h"
#include "data/prepare.h"
#include "interop/hf/pretrained_config.h"

namespace attnlab {

int run_prepare_command(const CommandArgs& args) {
  config::ComposeRequest request;
  request.overrides = args.overrides;
  request.config_dir = args.config_dir;
  const YAML::Node composed = compose_with_pretrained(request);
  const PreparedData data = prepare_data(composed);
  std::cerr << describe_split(data) << "\n";
  std::printf("%s %s\n", data.built ? "wrote" : "up to date:", data.dir.c_str());
  std::printf("tokenizer %s (vocab %lld)\n", data.tokenizer->fingerprint().c_str(),
              static_cast<long long>(data.tokenizer->vocab_size()));
  for (const auto& [name, shard] : {std::pair{"train", data.train}, std::pair{"val", data.val}}) {
    const ShardInfo& info = shard->info();
    std::printf("%-5s %10llu tokens %10llu bytes %6llu documents  (%s)\n", name,
                static_cast<unsigned long long>(info.token_count),
                static_cast<unsigned long long>(info.utf8_bytes),
                static_cast<unsigned long long>(info.document_count), shard->path().c_str());
  }
  if (data.val->size() > 0) std::printf("val bytes/token %.4f\n", data.val_bytes_per_token());
  return 0;
}

}  // namespace attnlab
