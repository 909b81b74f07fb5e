// Moved keys (config/moved_keys.h): attention.mask / attention.block_size live at model.mask /
// model.block_size. A user's old key (override of any op, a config file) fails with one line
// naming the new key; a saved config from before the move reads back with the keys moved; the
// shipped configs hold the mask only under model.
#include "config/moved_keys.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "config/yaml_io.h"
#include "config/yaml_tree.h"
#include "tests/support/config_test_util.h"

using namespace attnlab;
using namespace attnlab::config;
using namespace attnlab::config::testing;

namespace {

std::string message_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

// A config attnlab wrote before the move (trimmed): the mask under attention.
const char* kOldSavedConfig = R"(seed: 7
model:
  d_model: 32
  n_layers: 2
  attention_per_layer: null
attention:
  name: mha
  mask: block_causal
  block_size: 16
  rope: true
objective:
  name: masked_diffusion
  block_size: null
)";

}  // namespace

TEST(MovedKeys, OldOverridesNameTheNewKeyOnOneLine) {
  const std::string configs = source_configs();
  for (const std::string override : {"attention.mask=block_causal", "+attention.mask=block_causal",
                                     "++attention.mask=block_causal"}) {
    const std::string message = message_of([&] { compose_in(configs, {override}); });
    EXPECT_NE(message.find("'attention.mask' has moved to 'model.mask'"), std::string::npos)
        << override << ": " << message;
    EXPECT_NE(message.find("model.mask=block_causal"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  EXPECT_USER_ERROR(compose_in(configs, {"attention.block_size=16"}),
                    "'attention.block_size' has moved to 'model.block_size'",
                    "model.block_size=16");
  EXPECT_USER_ERROR(compose_in(configs, {"~attention.mask"}), "has moved to 'model.mask'");
  // On a run's saved config too (`attnlab eval run_dir=... attention.mask=...`).
  const YAML::Node saved = upgrade_saved_config(YAML::Load(kOldSavedConfig));
  EXPECT_USER_ERROR(apply_overrides(saved, {"attention.mask=causal"}),
                    "'attention.mask' has moved to 'model.mask'", "model.mask=causal");
  // The new keys take the values.
  const YAML::Node config = compose_in(configs, {"model.mask=block_causal", "model.block_size=16"});
  EXPECT_EQ(find_node(config, "model.mask").Scalar(), "block_causal");
  EXPECT_EQ(find_node(config, "model.block_size").as<int>(), 16);
}

TEST(MovedKeys, AConfigFileThatSetsAnOldKeyIsRefused) {
  TempDir dir;
  std::filesystem::create_directories(std::filesystem::path(dir.path()) / "attention");
  std::ofstream(std::filesystem::path(dir.path()) / "config.yaml")
      << "defaults:\n  - attention: mine\n  - _self_\nmodel:\n  mask: causal\n";
  std::ofstream(std::filesystem::path(dir.path()) / "attention" / "mine.yaml")
      << "name: mha\nmask: bidirectional\n";
  EXPECT_USER_ERROR(compose_in(dir.path(), {}), "'attention.mask' has moved to 'model.mask'",
                    "model.mask=bidirectional", "a config file sets it");
}

TEST(MovedKeys, ShippedConfigsKeepTheMaskAtModelLevelOnly) {
  const std::string configs = source_configs();
  for (const std::string model : {"gpt", "gpt2", "llama", "mistral", "qwen2"}) {
    for (const std::string attention : {"mha", "moh", "diff", "gda", "lssa", "lssar"}) {
      const YAML::Node config = compose_in(configs, {"model=" + model, "attention=" + attention});
      EXPECT_EQ(find_node(config, "model.mask").Scalar(), "causal") << model << attention;
      EXPECT_EQ(find_node(config, "model.block_size").as<int>(), 0) << model << attention;
      EXPECT_FALSE(find_node(config, "attention.mask").IsDefined()) << attention;
      EXPECT_FALSE(find_node(config, "attention.block_size").IsDefined()) << attention;
    }
  }
  const YAML::Node classification = compose_in(configs, {"task=classification"});
  EXPECT_EQ(find_node(classification, "model.mask").Scalar(), "bidirectional");
}

TEST(MovedKeys, SavedConfigsFromBeforeTheMoveReadBackAtTheNewKeys) {
  const YAML::Node upgraded = parse_saved_config(kOldSavedConfig, "old config.yaml");
  EXPECT_EQ(find_node(upgraded, "model.mask").Scalar(), "block_causal");
  EXPECT_EQ(find_node(upgraded, "model.block_size").as<int>(), 16);
  EXPECT_FALSE(find_node(upgraded, "attention.mask").IsDefined());
  EXPECT_FALSE(find_node(upgraded, "attention.block_size").IsDefined());
  // Everything else as it was, and the objective's own block_size untouched.
  EXPECT_EQ(find_node(upgraded, "attention.name").Scalar(), "mha");
  EXPECT_TRUE(find_node(upgraded, "attention.rope").as<bool>());
  EXPECT_TRUE(find_node(upgraded, "objective.block_size").IsNull());
  EXPECT_EQ(find_node(upgraded, "model.d_model").as<int>(), 32);
  // The input is not changed; an upgraded (current) config upgrades to itself.
  const YAML::Node original = YAML::Load(kOldSavedConfig);
  upgrade_saved_config(original);
  EXPECT_TRUE(find_node(original, "attention.mask").IsDefined());
  EXPECT_EQ(to_yaml(upgrade_saved_config(upgraded)), to_yaml(upgraded));
  // A new key already there wins over the old one.
  const YAML::Node both = upgrade_saved_config(
      YAML::Load("model: {mask: causal}\nattention: {name: mha, mask: bidirectional}"));
  EXPECT_EQ(find_node(both, "model.mask").Scalar(), "causal");
  EXPECT_FALSE(find_node(both, "attention.mask").IsDefined());
  // From a file (a run directory's config.yaml), through the checked loader.
  TempDir dir;
  const std::string path = dir.path() + "/config.yaml";
  std::ofstream(path) << kOldSavedConfig;
  const YAML::Node loaded = load_saved_config(path);
  EXPECT_EQ(to_yaml(loaded), to_yaml(upgraded));
  // And then composes with overrides of the new keys, as `attnlab eval run_dir=...` does.
  const YAML::Node evaluated = apply_overrides(loaded, {"model.mask=causal"});
  EXPECT_EQ(find_node(evaluated, "model.mask").Scalar(), "causal");
}

// The final sample's keys took the names of `attnlab sample`'s options (trainer.sample.*).
TEST(MovedKeys, TheFinalSampleKeysMovedUnderTrainerSample) {
  const std::string configs = source_configs();
  const std::string message =
      message_of([&] { compose_in(configs, {"trainer.sample_tokens=20"}); });
  EXPECT_NE(message.find("'trainer.sample_tokens' has moved to 'trainer.sample.max_new_tokens'"),
            std::string::npos)
      << message;
  const YAML::Node composed = compose_in(configs, {"trainer.sample.max_new_tokens=20"});
  EXPECT_EQ(find_node(composed, "trainer.sample.max_new_tokens").as<int>(), 20);
  EXPECT_EQ(find_node(composed, "trainer.sample.top_k").as<int>(), 40);
  const YAML::Node upgraded = parse_saved_config(
      "trainer:\n  max_steps: 5\n  sample_tokens: 7\n  sample_prompt: Call\n"
      "  sample_temperature: 0.5\n  sample_top_k: 3\n",
      "old config.yaml");
  EXPECT_EQ(find_node(upgraded, "trainer.sample.max_new_tokens").as<int>(), 7);
  EXPECT_EQ(find_node(upgraded, "trainer.sample.prompt").Scalar(), "Call");
  EXPECT_DOUBLE_EQ(find_node(upgraded, "trainer.sample.temperature").as<double>(), 0.5);
  EXPECT_EQ(find_node(upgraded, "trainer.sample.top_k").as<int>(), 3);
  EXPECT_FALSE(find_node(upgraded, "trainer.sample_tokens").IsDefined());
  EXPECT_EQ(find_node(upgraded, "trainer.max_steps").as<int>(), 5);
}

// An empty config.yaml in a run dir gave "missing config key 'tokenizer.name'", naming no file.
TEST(SavedConfig, AnEmptyOrNonMappingFileIsAnErrorNamingIt) {
  TempDir dir;
  const std::string path = dir.path() + "/config.yaml";
  for (const std::string text : {"", "\n# only a comment\n", "{}\n"}) {
    std::ofstream(path, std::ios::trunc) << text;
    const std::string message = message_of([&] { load_saved_config(path); });
    EXPECT_NE(message.find("'" + path + "' is empty"), std::string::npos)
        << "'" << text << "': " << message;
    EXPECT_NE(message.find("run's composed config"), std::string::npos) << message;
  }
  // Not a mapping: the loader's own message, which names the file too.
  for (const std::string text : {"just text\n", "[1, 2]\n"}) {
    std::ofstream(path, std::ios::trunc) << text;
    const std::string message = message_of([&] { load_saved_config(path); });
    EXPECT_NE(message.find(path), std::string::npos) << "'" << text << "': " << message;
  }
}
