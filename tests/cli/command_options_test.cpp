// Typed command options (cli/command_options.h): a command's key=value arguments bound into its
// options struct, with the defaults of the struct, typed values, checks and one-line errors.
#include "cli/command_options.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "common/error.h"

namespace attnlab {
namespace {

struct ToyCommandOptions {
  TORCH_ARG(std::optional<std::string>, run_dir) = std::nullopt;
  TORCH_ARG(std::string, checkpoint) = "best";
  TORCH_ARG(int64_t, top_k) = 0;
  TORCH_ARG(std::optional<double>, temperature) = std::nullopt;

 public:
  template <class V>
  void visit(V& v) {
    v("run_dir", run_dir(), "run");
    v("checkpoint", checkpoint(), "which checkpoint");
    v("top_k", top_k(), "k", config::at_least(0));
    v("temperature", temperature(), "t", config::at_least(0.0));
  }
};

std::string error_of(const std::vector<std::string>& args) {
  try {
    bind_command_options<ToyCommandOptions>("toy", args);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(CommandOptions, BindsTypedValuesOverTheStructDefaults) {
  const auto defaults = bind_command_options<ToyCommandOptions>("toy", {});
  EXPECT_FALSE(defaults.run_dir().has_value());
  EXPECT_EQ(defaults.checkpoint(), "best");
  EXPECT_EQ(defaults.top_k(), 0);
  EXPECT_FALSE(defaults.temperature().has_value());

  const auto set = bind_command_options<ToyCommandOptions>(
      "toy", {"run_dir=runs/a=b", "top_k=40", "temperature=0.7", "checkpoint=latest"});
  EXPECT_EQ(*set.run_dir(), "runs/a=b");
  EXPECT_EQ(set.checkpoint(), "latest");
  EXPECT_EQ(set.top_k(), 40);
  EXPECT_DOUBLE_EQ(*set.temperature(), 0.7);
  EXPECT_EQ(command_option_keys<ToyCommandOptions>(),
            (std::vector<std::string>{"run_dir", "checkpoint", "top_k", "temperature"}));
}

TEST(CommandOptions, BadValuesAreOneLineNamingTheCommandAndKey) {
  EXPECT_NE(error_of({"top_k=many"}).find("attnlab toy: top_k: expected int"), std::string::npos)
      << error_of({"top_k=many"});
  EXPECT_NE(error_of({"top_k=-1"}).find("attnlab toy: top_k"), std::string::npos);
  EXPECT_NE(error_of({"temperature=-0.5"}).find("temperature"), std::string::npos);
  EXPECT_NE(error_of({"topk=3"}).find("accepted keys: run_dir, checkpoint, top_k, temperature"),
            std::string::npos);
  EXPECT_NE(error_of({"top_k=1", "top_k=2"}).find("given twice"), std::string::npos);
  try {
    required_option("toy", "run_dir", std::nullopt);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "attnlab toy: missing required option run_dir=...");
  }
  EXPECT_EQ(required_option("toy", "run_dir", std::string("x")), "x");
}

}  // namespace
}  // namespace attnlab
