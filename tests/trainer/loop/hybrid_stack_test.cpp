// Hybrid stacks (model.attention_per_layer, issue #18): the per-layer grammar and its errors; a
// 4-layer mha/lssar/moh stack builds each layer's own module, trains, resumes bitwise, converts an
// MHA run's weights into its MoH layer (init_from), and exports a .pt that holds every layer's
// tensors under its own names; `attnlab probe` probes the chosen layer's own module.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "config/config.h"
#include "config/yaml_io.h"
#include "io/weights_io.h"
#include "modules/attention/mha.h"
#include "modules/attention/moh.h"
#include "modules/attention/softplus_attention.h"
#include "modules/attention_entry.h"
#include "modules/gpt.h"
#include "probes/probe.h"
#include "tests/support/attnlab_command.h"
#include "tests/support/run_metrics.h"
#include "tests/support/train_runs.h"
#include "trainer/checkpoint.h"
#include "trainer/train_loop.h"
#include "trainer/weight_sources.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

std::string scratch(const std::string& name) {
  return attnlab::testing::scratch_run_dir("hybrid_" + name);
}

YAML::Node hybrid_config(const std::string& run_dir, std::vector<std::string> extra = {}) {
  return attnlab::testing::compose_shipped(
      {"run.dir=" + run_dir, "model.d_model=32", "model.n_layers=4", "model.n_heads=4",
       "model.max_seq_len=32", "model.attention_per_layer='mha*2,lssar,moh'", "data.seq_len=32",
       "data.batch_size=4", "data.max_documents=20", "trainer.max_steps=6", "trainer.eval_every=3",
       "trainer.eval_batches=2", "trainer.checkpoint_every=3", "trainer.threads=1",
       "trainer.progress=none", "trainer.log_every=1", "scheduler.warmup_steps=0"},
      extra);
}

}  // namespace

TEST(HybridStack, PerLayerGrammarAndErrors) {
  EXPECT_EQ(parse_layer_attention(YAML::Load("mha*2, lssar,moh"), 4),
            (std::vector<std::string>{"mha", "mha", "lssar", "moh"}));
  EXPECT_EQ(parse_layer_attention(YAML::Load("[diff, gda]"), 2),
            (std::vector<std::string>{"diff", "gda"}));
  auto message = [](const std::string& text, int64_t layers) {
    try {
      parse_layer_attention(YAML::Load(text), layers);
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("mha*3", 4).find("names 3 layers, the model has model.n_layers=4"),
            std::string::npos)
      << message("mha*3", 4);
  EXPECT_NE(message("mha*9", 4).find("names 5 or more layers"), std::string::npos)
      << message("mha*9", 4);
  EXPECT_NE(message("mha,mhaa", 2).find("unknown attention 'mhaa'; available:"), std::string::npos);
  EXPECT_NE(message("mha*x", 2).find("needs a positive count"), std::string::npos);
  EXPECT_NE(message("mha*0,mha*2", 2).find("needs a positive count"), std::string::npos);
}

// A layer of another module gets that module's defaults, and a layer of the group's module after
// it still gets the group's options: building a layer never writes into the config's
// `attention:` node (yaml-cpp's Node assignment writes through a node that refers to another).
TEST(HybridStack, LayersAfterAnotherModuleKeepTheGroupsOptions) {
  const YAML::Node config = attnlab::testing::compose_shipped(
      {"attention=moh", "attention.router_init=trunc_normal", "attention.qkv_bias=true",
       "model.n_layers=4", "model.d_model=32", "model.n_heads=4", "model.positions=learned",
       "model.attention_per_layer=[moh, mha, diff, moh]"});
  const std::string before = config::to_yaml(config);
  const GptOptions options = gpt_options_from_config(config, 64);
  for (int64_t layer : {0, 3}) {
    std::string name;
    const AttentionOptions layer_options = attention_options_for_layer(options, layer, &name);
    EXPECT_EQ(name, "moh") << "layer " << layer;
    const auto own = module_options<MohModuleOptions>(layer_options);
    EXPECT_EQ(own.router_init(), "trunc_normal") << "layer " << layer;
    EXPECT_TRUE(own.qkv_bias()) << "layer " << layer;
    EXPECT_FALSE(layer_options.rotary_positions) << "layer " << layer;
  }
  std::string name;
  const AttentionOptions mha = attention_options_for_layer(options, 1, &name);
  EXPECT_EQ(name, "mha");
  EXPECT_FALSE(module_options<MhaModuleOptions>(mha).bias().has_value())
      << "another module takes its own defaults";
  Gpt model(options);
  EXPECT_EQ(config::to_yaml(config), before) << "building the model changed the config";
  EXPECT_TRUE(model->named_parameters().contains("blocks.3.attn.qkv.bias"));
}

TEST(HybridStack, MixedStackTrainsResumesBitwiseAndExports) {
  const std::string straight = scratch("straight"), resumed = scratch("resumed");
  const TrainSummary a = train(hybrid_config(straight), {}, {"test"});
  ASSERT_EQ(a.step, 6);
  // Each layer holds its own module's tensors: mha/lssar q_proj..out_proj, moh a fused qkv.
  const auto params = read_checkpoint_model_state(resolve_checkpoint(straight));
  for (const char* name :
       {"blocks.0.attn.q_proj.weight", "blocks.1.attn.out_proj.weight",
        "blocks.2.attn.q_proj.weight", "blocks.3.attn.qkv.weight", "blocks.3.attn.proj.weight"})
    EXPECT_TRUE(params.count(name)) << name;
  EXPECT_FALSE(params.count("blocks.3.attn.q_proj.weight"));
  EXPECT_FALSE(params.count("blocks.0.attn.qkv.weight"));
  // MoH's balance loss is a loss term of the hybrid too.
  std::ifstream metrics(straight + "/metrics.jsonl");
  std::string first;
  std::getline(metrics, first);
  EXPECT_NE(first.find("train/aux/moh_balance"), std::string::npos) << first;

  // Interrupted at step 3 and resumed: bitwise the uninterrupted run.
  const TrainSummary half = train(hybrid_config(resumed, {"trainer.halt_at_step=3"}), {}, {"test"});
  ASSERT_EQ(half.step, 3);
  const TrainSummary rest = train(hybrid_config(resumed), {}, {"test"});
  ASSERT_EQ(rest.step, 6);
  EXPECT_EQ(attnlab::testing::train_losses(straight), attnlab::testing::train_losses(resumed));
  const auto end = read_checkpoint_model_state(resolve_checkpoint(resumed));
  for (const auto& [name, tensor] : params) EXPECT_TRUE(torch::equal(tensor, end.at(name))) << name;

  // Resuming with another per-layer layout is refused (a different model).
  try {
    train(hybrid_config(resumed, {"trainer.max_steps=8", "model.attention_per_layer='mha*4'"}), {},
          {"test"});
    FAIL() << "resumed a hybrid run as an all-mha model";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model.attention_per_layer"), std::string::npos)
        << e.what();
  }

  // init_from an all-MHA run: the MoH layer's qkv is its q/k/v stacked, the MHA layers are copied.
  const std::string mha = scratch("mha_source"), converted = scratch("converted");
  train(hybrid_config(mha, {"model.attention_per_layer=null", "trainer.max_steps=2"}), {},
        {"test"});
  const auto source = read_checkpoint_model_state(resolve_checkpoint(mha));
  train(hybrid_config(converted, {"init_from=" + mha, "trainer.max_steps=1", "optim.lr=0"}), {},
        {"test"});
  const auto target = read_checkpoint_model_state(resolve_checkpoint(converted));
  EXPECT_TRUE(torch::equal(target.at("blocks.0.attn.q_proj.weight"),
                           source.at("blocks.0.attn.q_proj.weight")));
  EXPECT_TRUE(torch::equal(target.at("blocks.3.attn.qkv.weight"),
                           torch::cat({source.at("blocks.3.attn.q_proj.weight"),
                                       source.at("blocks.3.attn.k_proj.weight"),
                                       source.at("blocks.3.attn.v_proj.weight")})));
  EXPECT_TRUE(torch::equal(target.at("blocks.3.attn.proj.weight"),
                           source.at("blocks.3.attn.out_proj.weight")));

  const std::string out = straight + "/hybrid.pt";
  const auto exported = test::run_attnlab("export run_dir=" + straight + " out=" + out);
  ASSERT_EQ(exported.code, 0) << exported.output;
  const StateDict weights = read_weights(out);
  EXPECT_EQ(weights.size(), params.size());
  for (const auto& [name, tensor] : params)
    EXPECT_TRUE(torch::equal(tensor, weights.at(name))) << name;
}

// `attnlab probe` on a hybrid stack probes the module of the chosen layer, built with the same
// options the GPT gives that layer (modules/gpt.h's attention_options_for_layer).
TEST(HybridStack, ProbeTakesTheLayersOwnModule) {
  auto config = [](int layer) {
    return attnlab::testing::compose_shipped(
        {"model.d_model=32", "model.n_layers=2", "model.n_heads=4", "model.max_seq_len=16",
         "model.attention_per_layer=[mha,moh]", "probe.seq_len=8",
         "probe.layer_index=" + std::to_string(layer)});
  };
  const auto mha = probe_attention(config(0));
  const auto moh = probe_attention(config(1));
  EXPECT_TRUE(mha.count("param.q_proj.weight"));
  EXPECT_FALSE(mha.count("param.qkv.weight"));
  EXPECT_TRUE(moh.count("param.qkv.weight"));
  EXPECT_FALSE(moh.count("param.q_proj.weight"));
}

// `attnlab grow` on a hybrid: the differential layers grow (function-preserving), the others are
// copied, and the grown weights continue as the same hybrid with more signal heads: its
// validation loss after a step with optim.lr=0 equals the source run's final one.
TEST(HybridStack, GrowWidensTheDifferentialLayersOfAHybrid) {
  const std::string source = scratch("grow_source"), grown_run = scratch("grow_grown");
  const std::string common =
      " model.d_model=32 model.n_layers=3 model.n_heads=4 model.max_seq_len=32 data.seq_len=32"
      " data.batch_size=4 data.max_documents=20 trainer.eval_batches=2 trainer.threads=1"
      " trainer.progress=none model.attention_per_layer=[mha,gda,gda] attention=gda"
      " attention.n_noise=1";
  auto run = test::run_attnlab("train run.dir=" + source + common +
                               " attention.n_signal=3 trainer.max_steps=4");
  ASSERT_EQ(run.code, 0) << run.output;
  const std::string out = source + "/grown.pt";
  run = test::run_attnlab("grow run_dir=" + source + " attention.n_signal=6 out=" + out);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("grew 2 layer(s) from 3 to 6 signal heads"), std::string::npos)
      << run.output;
  run = test::run_attnlab("train run.dir=" + grown_run + common + " attention.n_signal=6" +
                          " init_from=" + out + " init_strict=true trainer.max_steps=1 optim.lr=0");
  ASSERT_EQ(run.code, 0) << run.output;
  auto val_loss = [](const std::string& dir) {
    std::ifstream in(dir + "/result.json");
    return nlohmann::json::parse(in).at("val_loss").get<double>();
  };
  const double before = val_loss(source), after = val_loss(grown_run);
  EXPECT_NEAR(after, before, 1e-5 * before);
  std::cerr << "[hybrid grow] val loss " << before << " -> " << after << "\n";
  // The MHA layer came through unchanged; the GDA layers have twice the signal query rows.
  const auto source_weights = read_checkpoint_model_state(resolve_checkpoint(source));
  const auto grown_weights = read_weights(out);
  EXPECT_TRUE(torch::equal(grown_weights.at("blocks.0.attn.q_proj.weight"),
                           source_weights.at("blocks.0.attn.q_proj.weight")));
  EXPECT_EQ(grown_weights.at("blocks.1.attn.q_proj.weight").size(0),
            source_weights.at("blocks.1.attn.q_proj.weight").size(0) * 7 / 4);
}

// Per-layer options ({name: moh, routed_k: 3}) reach that layer's module and no other; a module
// refusing a layer's option names the layer.
TEST(HybridStack, PerLayerOptionsReachTheirModules) {
  const std::vector<std::string> sizes = {"model.d_model=32", "model.n_layers=4", "model.n_heads=8",
                                          "model.max_seq_len=16"};
  const YAML::Node config = attnlab::testing::compose_shipped(
      sizes, {"model.attention_per_layer=[mha, {name: moh, routed_k: 3}, "
              "{name: lssar, power: 3}, moh]"});
  const GptOptions options = gpt_options_from_config(config, 64);
  ASSERT_EQ(options.layer_attention, (std::vector<std::string>{"mha", "moh", "lssar", "moh"}));
  Gpt model(options);
  auto moh_options = [&](int layer) {
    auto moh = std::dynamic_pointer_cast<MohAttentionImpl>(model->blocks[layer]->attn);
    EXPECT_TRUE(moh != nullptr) << "layer " << layer;
    return moh->options();
  };
  EXPECT_EQ(moh_options(1).routed_k, 3);
  EXPECT_EQ(moh_options(3).routed_k, 2) << "a bare name keeps the default int(0.25 * n_heads)";
  EXPECT_EQ(moh_options(1).shared_heads, 4);
  std::string name;
  EXPECT_EQ(
      module_options<LssarModuleOptions>(attention_options_for_layer(options, 2, &name)).power(),
      3.0);
  EXPECT_EQ(name, "lssar");
  EXPECT_NO_THROW(module_options<MhaModuleOptions>(attention_options_for_layer(options, 0, &name)));

  // A value the config engine cannot check (routed_k may be null, an int or a list) is refused
  // when the layer's options are bound, and the error names the layer and the key.
  const YAML::Node bad = attnlab::testing::compose_shipped(
      sizes, {"model.attention_per_layer=[mha, {name: moh, routed_k: many}, mha, mha]"});
  try {
    Gpt refused(gpt_options_from_config(bad, 64));
    FAIL() << "built a MoH layer with routed_k=many";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model.attention_per_layer[layer 1].routed_k"),
              std::string::npos)
        << e.what();
  }
}

// A bare name builds the module from its built-in defaults, a mapping from its shipped
// configs/attention/<name>.yaml (completed by the config engine). For every module the two give
// the same parameters, outputs and auxiliary losses, so the shipped defaults and the C++ ones
// agree.
TEST(HybridStack, ABareNameBuildsWhatTheModulesShippedConfigBuilds) {
  const std::vector<std::string> sizes = {"model.d_model=32", "model.n_layers=2", "model.n_heads=4",
                                          "model.max_seq_len=16"};
  const torch::Tensor tokens = torch::randint(64, {2, 16}, torch::kLong);
  // The shipped options (the registry may also hold modules other tests register).
  std::vector<std::string> shipped;
  for (const auto& file :
       fs::directory_iterator(std::string(ATTNLAB_SOURCE_DIR) + "/configs/attention"))
    shipped.push_back(file.path().stem().string());
  EXPECT_EQ(shipped.size(), 6u);
  for (const std::string& module : shipped) {
    SCOPED_TRACE(module);
    auto build = [&](const std::string& entry) {
      const YAML::Node config = attnlab::testing::compose_shipped(
          sizes, {"model.attention_per_layer=[mha, " + entry + "]"});
      torch::manual_seed(7);
      Gpt model(gpt_options_from_config(config, 64));
      model->train();
      return model;
    };
    Gpt bare = build(module), mapped = build("{name: " + module + "}");
    const auto bare_params = bare->named_parameters(), mapped_params = mapped->named_parameters();
    ASSERT_EQ(bare_params.size(), mapped_params.size());
    for (const auto& item : bare_params)
      EXPECT_TRUE(torch::equal(item.value(), mapped_params[item.key()])) << item.key();
    const ModelOutput a = bare->forward(tokens), b = mapped->forward(tokens);
    EXPECT_TRUE(torch::equal(a.logits, b.logits));
    ASSERT_EQ(a.aux_losses.size(), b.aux_losses.size());
    for (const auto& [key, value] : a.aux_losses)
      EXPECT_TRUE(torch::equal(value, b.aux_losses.at(key))) << key;
  }
}

// The completed per-layer options are part of the model: config.yaml records them, resuming
// with another value is refused naming the list, and a kernel choice (sparse_compute) may change.
TEST(HybridStack, ResumeChecksPerLayerOptions) {
  const std::string run_dir = scratch("per_layer_resume");
  auto train_with = [&](const std::string& moh_entry, int steps) {
    return test::run_attnlab(
        "train run.dir=" + run_dir +
        " model.d_model=32 model.n_layers=2 model.n_heads=4 model.max_seq_len=32 data.seq_len=32"
        " data.batch_size=4 data.max_documents=20 trainer.eval_batches=1 trainer.threads=1"
        " trainer.progress=none trainer.max_steps=" +
        std::to_string(steps) + " \"model.attention_per_layer=[mha, " + moh_entry + "]\"");
  };
  auto run = train_with("{name: moh, routed_k: 2}", 2);
  ASSERT_EQ(run.code, 0) << run.output;
  const YAML::Node saved = config::load_config_file(run_dir + "/config.yaml").content;
  EXPECT_EQ(saved["model"]["attention_per_layer"][1]["routed_k"].as<int>(), 2);
  EXPECT_EQ(saved["model"]["attention_per_layer"][1]["router"].Scalar(), "learned");
  run = train_with("{name: moh, routed_k: 3}", 3);
  EXPECT_EQ(run.code, 2) << run.output;
  EXPECT_NE(run.output.find("model.attention_per_layer"), std::string::npos) << run.output;
  run = train_with("{name: moh, routed_k: 2, sparse_compute: false}", 3);
  EXPECT_EQ(run.code, 0) << run.output;
}
