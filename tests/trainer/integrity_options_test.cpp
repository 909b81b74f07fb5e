// Option values are validated where they are parsed (issue 17): out-of-range model options used
// to abort inside LibTorch or build zero-width layers; now each is a UserError naming the key and
// the value.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "modules/gpt.h"

namespace attnlab {
namespace {

YAML::Node model_config() {
  return YAML::Load(
      "model: {d_model: 16, n_layers: 1, n_heads: 2, max_seq_len: 8, mlp_ratio: 4.0, "
      "dropout: 0.0}\nattention: {name: mha}\n");
}

void expect_rejected(const std::string& key, const std::string& value, const std::string& shown) {
  YAML::Node config = model_config();
  config["model"][key] = YAML::Load(value);
  try {
    gpt_options_from_config(config, 32);
    ADD_FAILURE() << "model." << key << "=" << value << " was accepted";
  } catch (const UserError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("model." + key), std::string::npos) << message;
    EXPECT_NE(message.find(shown), std::string::npos) << message;
  }
}

TEST(IntegrityOptions, DropoutOutsideZeroToOneIsAUserError) {
  expect_rejected("dropout", "2", "got 2");
  expect_rejected("dropout", "-0.5", "got -0.5");
  expect_rejected("dropout", "1", "got 1");
  expect_rejected("dropout", ".nan", "got nan");
  YAML::Node config = model_config();
  config["model"]["dropout"] = 0.5;
  EXPECT_DOUBLE_EQ(gpt_options_from_config(config, 32).dropout, 0.5);
}

TEST(IntegrityOptions, MlpRatioMustGiveAPositiveWidth) {
  expect_rejected("mlp_ratio", "0", "got 0");
  expect_rejected("mlp_ratio", "-1", "got -1");
  expect_rejected("mlp_ratio", "0.01", "got 0.01");  // 16 * 0.01 rounds to a zero-wide MLP
  YAML::Node config = model_config();
  config["model"]["mlp_ratio"] = 0.5;
  EXPECT_DOUBLE_EQ(gpt_options_from_config(config, 32).mlp_ratio, 0.5);
}

TEST(IntegrityOptions, OtherModelNumbersAreRangeChecked) {
  expect_rejected("max_seq_len", "0", "got 0");
  expect_rejected("n_kv_heads", "-2", "got -2");
  expect_rejected("rope_theta", "-1", "got -1");
  expect_rejected("norm_eps", "-1e-5", "got -1e-05");
}

}  // namespace
}  // namespace attnlab
