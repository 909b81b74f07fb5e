// finetune=lora end to end on a real corpus slice (Moby Dick): the adapters start the model at the
// base exactly (B = 0), only they train (the base and everything else stay as init_from loaded
// them), an interrupted-and-resumed LoRA run equals the uninterrupted one bitwise, the checkpoint
// reloads into the adapted model (load_run), and the merged weights (export format=hf's) compute
// the same logits as the adapters, for every attention module and MLP that can carry them. Bad
// targets and values are one line naming the key.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "common/error.h"
#include "io/weights_io.h"
#include "tests/support/run_metrics.h"
#include "tests/support/train_runs.h"
#include "trainer/checkpoint.h"
#include "trainer/finetune.h"
#include "trainer/optimizer.h"
#include "trainer/run_setup.h"
#include "trainer/train_loop.h"
#include "trainer/weight_sources.h"

using namespace attnlab;

namespace {

std::string scratch(const std::string& name) { return attnlab::testing::scratch_run_dir(name); }

std::vector<std::string> tiny_overrides() {
  return {"model.d_model=32",     "model.n_layers=2",       "model.n_heads=2",
          "model.max_seq_len=32", "model.dropout=0.1",      "data.seq_len=32",
          "data.batch_size=4",    "data.max_documents=20",  "trainer.max_steps=12",
          "trainer.eval_every=6", "trainer.eval_batches=2", "trainer.checkpoint_every=4",
          "trainer.threads=1",    "trainer.progress=none",  "scheduler.warmup_steps=3",
          "model.mlp=swiglu",     "model.norm=rms",         "model.positions=rope"};
}

YAML::Node tiny_config(const std::string& run_dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> overrides = tiny_overrides();
  overrides.push_back("run.dir=" + run_dir);
  return attnlab::testing::compose_shipped(overrides, extra);
}

torch::Tensor logits(Gpt& model, const torch::Tensor& ids) {
  model->eval();
  torch::NoGradGuard no_grad;
  return model->forward(ids).logits;
}

}  // namespace

TEST(Lora, AdaptersStartAtTheBaseAndOnlyTheyTrain) {
  YAML::Node config = tiny_config(scratch("lora_unit"), {"finetune=lora", "finetune.r=4"});
  Gpt model = build_model(config, 300);
  const torch::Tensor ids = torch::arange(0, 32, torch::kInt64).reshape({2, 16}) * 5 % 300;
  const torch::Tensor before = logits(model, ids);
  const std::string line = apply_finetune(config, *model);
  EXPECT_EQ(line.rfind("lora: r=4 alpha=32 on 8 modules (q_proj, k_proj, v_proj, out_proj), "
                       "trainable 2,048 of ",
                       0),
            0u)
      << line;
  EXPECT_TRUE(torch::equal(logits(model, ids), before));  // B = 0: exactly the base

  const StateDict weights = state_dict(*model);
  EXPECT_EQ(weights.at("blocks.1.attn.q_proj.lora_A.weight").sizes(), (torch::IntArrayRef{4, 32}));
  EXPECT_EQ(weights.at("blocks.1.attn.q_proj.lora_B.weight").sizes(), (torch::IntArrayRef{32, 4}));
  EXPECT_EQ(weights.count("blocks.1.attn.q_proj.weight"), 1u);
  EXPECT_EQ(lora_module_names(weights).size(), 8u);
  // kaiming-uniform(a = sqrt(5)): |A| <= 1 / sqrt(in)
  EXPECT_LE(weights.at("blocks.0.attn.v_proj.lora_A.weight").abs().max().item<double>(),
            1.0 / std::sqrt(32.0));

  const OptimizerSetup setup = make_optimizer(*model, config);
  std::vector<std::string> trained;
  for (const auto& group : setup.groups)
    trained.insert(trained.end(), group.names.begin(), group.names.end());
  ASSERT_EQ(trained.size(), 16u);
  for (const auto& name : trained)
    EXPECT_NE(name.find(".lora_"), std::string::npos) << name << " should be frozen";

  // modules_to_save trains fully; all-linear adapts the MLP too, never the head.
  YAML::Node wide =
      tiny_config(scratch("lora_unit_wide"),
                  {"finetune=lora", "finetune.target=[all-linear]",
                   "finetune.modules_to_save=[final_norm.*]", "model.tie_embeddings=false"});
  Gpt wide_model = build_model(wide, 300);
  EXPECT_NE(apply_finetune(wide, *wide_model).find("on 14 modules"), std::string::npos);
  for (const auto& item : wide_model->named_parameters()) {
    const bool trains =
        item.key().find(".lora_") != std::string::npos || item.key() == "final_norm.weight";
    EXPECT_EQ(item.value().requires_grad(), trains) << item.key();
  }
  EXPECT_EQ(state_dict(*wide_model).count("lm_head.lora_A.weight"), 0u);
}

// Every call site that runs an adapted Linear (the fused q/k/v GEMM, out_proj, DIFF's separate
// projections, both MLPs) adds its adapter: with random B, the adapted model's logits equal those
// of a plain model holding the merged weights, for each attention module and MLP kind.
TEST(Lora, EveryAdaptedLayerMatchesItsMergedWeights) {
  for (const std::string attention : {"mha", "diff", "lssa", "gda"}) {
    for (const std::string mlp : {"gelu", "swiglu"}) {
      SCOPED_TRACE(attention + " " + mlp);
      std::vector<std::string> model = {"attention=" + attention, "model.mlp=" + mlp,
                                        "model.dropout=0.0"};
      if (attention == "gda") model.push_back("model.n_heads=4");  // groups of group_ratio + 1
      std::vector<std::string> adapted_overrides = model;
      adapted_overrides.insert(adapted_overrides.end(),
                               {"finetune=lora", "finetune.target=[all-linear]", "finetune.r=2",
                                "finetune.use_rslora=true"});
      YAML::Node config = tiny_config(scratch("lora_merge"), adapted_overrides);
      Gpt adapted = build_model(config, 300);
      apply_finetune(config, *adapted);
      {
        torch::NoGradGuard no_grad;
        for (auto& item : adapted->named_parameters())
          if (item.key().find(".lora_B.") != std::string::npos) item.value().normal_(0.0, 0.05);
      }
      const StateDict weights = state_dict(*adapted);
      EXPECT_GE(lora_module_names(weights).size(), 4u);
      Gpt merged = build_model(tiny_config(scratch("lora_merge"), model), 300);
      load_state_dict(*merged, merge_lora_weights(weights, *lora_options(config)),
                      /*strict=*/true);
      const torch::Tensor ids = torch::arange(0, 32, torch::kInt64).reshape({2, 16}) * 5 % 300;
      const torch::Tensor got = logits(adapted, ids), want = logits(merged, ids);
      EXPECT_LE((got - want).abs().max().item<double>(), 1e-5);
      Gpt base = build_model(tiny_config(scratch("lora_merge"), model), 300);
      EXPECT_GT((got - logits(base, ids)).abs().max().item<double>(), 1e-3);
    }
  }
}

TEST(Lora, BadTargetsAndValuesAreOneLineNamingTheKey) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"finetune=lora", "finetune.target=[qkv_proj]"}, "finetune.target: 'qkv_proj' matches no"},
      {{"finetune=lora", "attention=moh"}, "finetune.target: 'q_proj' matches no"},
      {{"finetune=lora", "attention=moh", "finetune.target=[qkv]"}, "cannot carry a LoRA adapter"},
      {{"finetune=lora", "finetune.r=0"}, "finetune.r: "},
      {{"finetune=lora", "finetune.alpha=0"}, "finetune.alpha: "},
      {{"finetune=lora", "finetune.modules_to_save=[nothing.*]"}, "finetune.modules_to_save"}};
  for (const auto& [extra, expected] : cases) {
    SCOPED_TRACE(extra.back());
    YAML::Node config = tiny_config(scratch("lora_bad"), extra);
    try {
      Gpt model = build_model(config, 300);
      apply_finetune(config, *model);
      ADD_FAILURE() << "accepted";
    } catch (const UserError& error) {
      const std::string what = error.what();
      EXPECT_NE(what.find(expected), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
}

TEST(Lora, ResumedRunMatchesUninterruptedBitwiseAndTheBaseStaysFrozen) {
  const std::string source = scratch("lora_source");
  train(tiny_config(source,
                    {"trainer.max_steps=2", "trainer.eval_every=0", "scheduler.warmup_steps=1"}),
        {}, {"test"});
  const std::vector<std::string> lora = {
      "init_from=" + source,  "init_strict=true", "finetune=lora",      "finetune.r=4",
      "finetune.dropout=0.1", "optim.lr=0.01",    "trainer.log_every=1"};
  const std::string straight = scratch("lora_straight"), resumed = scratch("lora_resumed");
  TrainSummary a = train(tiny_config(straight, lora), {}, {"test"});
  ASSERT_EQ(a.step, 12);
  std::vector<std::string> halted = lora;
  halted.push_back("trainer.halt_at_step=5");
  TrainSummary first = train(tiny_config(resumed, halted), {}, {"test"});
  EXPECT_TRUE(first.interrupted);
  TrainSummary second = train(tiny_config(resumed, lora), {}, {"test"});
  EXPECT_EQ(second.step, 12);

  const auto losses_a = attnlab::testing::train_losses(straight);
  const auto losses_b = attnlab::testing::train_losses(resumed);
  ASSERT_EQ(losses_a.size(), 12u);
  ASSERT_EQ(losses_b.size(), 12u);
  for (size_t i = 0; i < losses_a.size(); ++i)
    EXPECT_EQ(losses_a[i], losses_b[i]) << "step " << i + 1;
  const StateDict params_a = read_checkpoint_model_state(resolve_checkpoint(straight));
  const StateDict params_b = read_checkpoint_model_state(resolve_checkpoint(resumed));
  ASSERT_EQ(params_a.size(), params_b.size());
  for (const auto& [name, tensor] : params_a)
    EXPECT_TRUE(torch::equal(tensor, params_b.at(name))) << name;

  // Only the adapters moved: every base tensor is the source's.
  const StateDict base = read_weights(source);
  for (const auto& [name, tensor] : base)
    EXPECT_TRUE(torch::equal(tensor, params_a.at(name))) << name << " changed";
  EXPECT_GT(params_a.at("blocks.0.attn.q_proj.lora_B.weight").abs().max().item<double>(), 0.0);

  // The checkpoint reloads into the adapted model; the merged weights compute the same logits.
  LoadedRun run = load_run(straight, {});
  const torch::Tensor ids = torch::arange(0, 32, torch::kInt64).reshape({2, 16}) * 5 % 250;
  const torch::Tensor adapted = logits(run.model, ids);
  YAML::Node plain = tiny_config(scratch("lora_plain"));
  Gpt merged = build_model(plain, run.model->options().vocab_size);
  load_state_dict(*merged, merge_lora_weights(params_a, *lora_options(*run.config)),
                  /*strict=*/true);
  const double diff = (logits(merged, ids) - adapted).abs().max().item<double>();
  EXPECT_LE(diff, 1e-5);
  Gpt base_model = build_model(plain, run.model->options().vocab_size);
  load_state_dict(*base_model, base, /*strict=*/true);
  EXPECT_GT((adapted - logits(base_model, ids)).abs().max().item<double>(), 1e-4);
}
