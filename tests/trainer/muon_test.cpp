// optim=muon (trainer/muon.h): the Muon update equals PyTorch's torch.optim.Muon, run by the
// project Python on the same matrices and gradients, over several steps (wide, tall and square
// matrices; Nesterov or not; both lr adjustments; weight decay); the AdamW groups step bitwise as
// torch::optim::AdamW; the parameter split between the two rules, each group's lr on the schedule,
// the options' checks, and the state through save/load.
#include "trainer/muon.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/error.h"
#include "io/weights_io.h"
#include "tests/support/python.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/optimizer.h"
#include "trainer/weight_sources.h"

namespace attnlab {
namespace {
using testing::TempDir;
using testing::TinyModel;

struct MuonCase {
  double lr, weight_decay, momentum;
  bool nesterov;
  std::vector<double> ns_coefficients;
  double eps;
  int64_t ns_steps;
  std::string adjust_lr_fn;  // "original" is passed to Python as None (its default)
};

std::string python_list(const std::vector<double>& values) {
  std::ostringstream out;
  out.precision(17);
  out << "(";
  for (double v : values) out << v << ", ";
  return out.str() + ")";
}

// Threads pinned to one for both sides, restored after the test.
class ThreadsPinned {
 public:
  ThreadsPinned() : saved_(torch::get_num_threads()) { torch::set_num_threads(1); }
  ~ThreadsPinned() { torch::set_num_threads(saved_); }

 private:
  int saved_;
};

TEST(Muon, MatchesTorchOptimMuonOverSeveralSteps) {
  REQUIRE_PYTHON_WITH("torch");
  ThreadsPinned threads;
  TempDir dir;
  constexpr int kSteps = 4;
  const std::vector<std::vector<int64_t>> shapes = {{8, 16}, {24, 8}, {12, 12}};
  const std::vector<MuonCase> cases = {
      {0.02, 0.1, 0.95, true, {3.4445, -4.775, 2.0315}, 1e-7, 5, "original"},
      {0.01, 0.0, 0.9, false, {3.4445, -4.775, 2.0315}, 1e-7, 5, "match_rms_adamw"},
      {0.05, 0.2, 0.8, true, {2.0, -1.5, 0.5}, 1e-3, 3, "original"},
  };
  torch::manual_seed(11);
  StateDict inputs;
  for (size_t m = 0; m < shapes.size(); ++m) {
    inputs["w" + std::to_string(m)] = torch::randn(shapes[m]) * 0.1;
    for (int s = 0; s < kSteps; ++s)
      inputs["g" + std::to_string(s) + ".w" + std::to_string(m)] = torch::randn(shapes[m]);
  }
  save_weights_file(dir / "inputs.pt", inputs);

  std::ostringstream script;
  script << "import sys, torch\nfrom torch.optim import Muon\ntorch.set_num_threads(1)\n"
         << "inputs = torch.load(sys.argv[1])\nout = {}\ncases = [\n";
  for (const auto& c : cases)
    script << "  dict(lr=" << c.lr << ", weight_decay=" << c.weight_decay
           << ", momentum=" << c.momentum << ", nesterov=" << (c.nesterov ? "True" : "False")
           << ", ns_coefficients=" << python_list(c.ns_coefficients) << ", eps=" << c.eps
           << ", ns_steps=" << c.ns_steps << ", adjust_lr_fn="
           << (c.adjust_lr_fn == "original" ? "None" : "'" + c.adjust_lr_fn + "'") << "),\n";
  script << "]\nfor k, case in enumerate(cases):\n"
         << "  params = [inputs[f'w{m}'].clone().requires_grad_() for m in range(" << shapes.size()
         << ")]\n"
         << "  opt = Muon(params, **case)\n"
         << "  for s in range(" << kSteps << "):\n"
         << "    for m, p in enumerate(params): p.grad = inputs[f'g{s}.w{m}'].clone()\n"
         << "    opt.step()\n"
         << "    for m, p in enumerate(params): out[f'c{k}.s{s}.w{m}'] = p.detach().clone()\n"
         << "torch.save(out, sys.argv[2])\n";
  std::ofstream(dir / "reference.py") << script.str();
  const std::string command = "'" + testing::project_python() + "' " + (dir / "reference.py") +
                              " " + (dir / "inputs.pt") + " " + (dir / "reference.pt") + " > " +
                              (dir / "py.log") + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << std::ifstream(dir / "py.log").rdbuf();
  const StateDict reference = read_weights(dir / "reference.pt");

  double max_difference = 0.0;
  for (size_t k = 0; k < cases.size(); ++k) {
    const MuonCase& c = cases[k];
    std::vector<torch::Tensor> params;
    for (size_t m = 0; m < shapes.size(); ++m)
      params.push_back(inputs.at("w" + std::to_string(m)).clone().requires_grad_());
    MuonGroupOptions options(c.lr);
    options.weight_decay(c.weight_decay)
        .momentum(c.momentum)
        .nesterov(c.nesterov)
        .ns_coefficients(c.ns_coefficients)
        .eps(c.eps)
        .ns_steps(c.ns_steps)
        .adjust_lr_fn(c.adjust_lr_fn);
    Muon optimizer(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(
                       params, std::make_unique<MuonGroupOptions>(options))},
                   options);
    for (int s = 0; s < kSteps; ++s) {
      for (size_t m = 0; m < params.size(); ++m)
        params[m].mutable_grad() =
            inputs.at("g" + std::to_string(s) + ".w" + std::to_string(m)).clone();
      optimizer.step();
      for (size_t m = 0; m < params.size(); ++m) {
        const std::string key =
            "c" + std::to_string(k) + ".s" + std::to_string(s) + ".w" + std::to_string(m);
        const double difference =
            (params[m].detach() - reference.at(key)).abs().max().item<double>();
        max_difference = std::max(max_difference, difference);
        EXPECT_LE(difference, 1e-6) << key;
      }
    }
  }
  std::cout << "max |attnlab Muon - torch.optim.Muon| = " << max_difference << "\n";
  RecordProperty("max_abs_difference", std::to_string(max_difference));
}

TEST(Muon, AdamWGroupsStepBitwiseAsTorchAdamW) {
  torch::manual_seed(5);
  const std::vector<torch::Tensor> start = {torch::randn({6, 4}), torch::randn({5})};
  std::vector<torch::Tensor> ours, theirs;
  for (const auto& t : start) {
    ours.push_back(t.clone().requires_grad_());
    theirs.push_back(t.clone().requires_grad_());
  }
  MuonGroupOptions options(0.003);
  options.algorithm("adamw").weight_decay(0.1).eps(1e-8).beta1(0.9).beta2(0.95);
  Muon muon(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(
                ours, std::make_unique<MuonGroupOptions>(options))},
            options);
  torch::optim::AdamW adamw(theirs, torch::optim::AdamWOptions(0.003)
                                        .betas(std::make_tuple(0.9, 0.95))
                                        .eps(1e-8)
                                        .weight_decay(0.1));
  for (int step = 0; step < 5; ++step) {
    for (size_t i = 0; i < start.size(); ++i) {
      const torch::Tensor grad = torch::randn(start[i].sizes());
      ours[i].mutable_grad() = grad.clone();
      theirs[i].mutable_grad() = grad.clone();
    }
    muon.step();
    adamw.step();
    for (size_t i = 0; i < start.size(); ++i)
      EXPECT_TRUE(torch::equal(ours[i], theirs[i])) << "step " << step << " tensor " << i;
  }
}

TEST(Muon, HiddenMatricesGoToMuonTheRestToAdamWEachOnItsOwnLr) {
  TinyModel model;
  auto setup =
      make_optimizer(*model, YAML::Load("optim: {name: muon, muon: {lr: 0.04, weight_decay: 0.01},"
                                        " adamw: {lr: 0.002, weight_decay: 0.3}}\n"
                                        "lr_multipliers: {'blocks.1.*': 0.5}"));
  ASSERT_NE(dynamic_cast<Muon*>(setup.optimizer.get()), nullptr);
  std::map<std::string, std::string> label;
  for (const auto& group : setup.groups)
    for (const auto& name : group.names) label[name] = group.label;
  EXPECT_EQ(label["blocks.0.fc.weight"], "muon");
  EXPECT_EQ(label["blocks.1.fc.weight"], "muon lr_x0.5");
  EXPECT_EQ(label["blocks.0.fc.bias"], "adamw no_decay");
  EXPECT_EQ(label["blocks.1.norm"], "adamw no_decay lr_x0.5");
  EXPECT_EQ(label["embed.weight"], "adamw no_decay");  // 2-D, but an embedding
  EXPECT_EQ(label["final_norm.weight"], "adamw no_decay");
  EXPECT_TRUE(is_muon_matrix("blocks.0.attn.q_proj.weight", torch::zeros({4, 4})));
  EXPECT_FALSE(is_muon_matrix("lm_head.weight", torch::zeros({4, 4})));
  EXPECT_FALSE(is_muon_matrix("classifier.weight", torch::zeros({4, 4})));
  EXPECT_FALSE(is_muon_matrix("blocks.0.attn.lambda_q1", torch::zeros({4})));

  set_learning_rate(setup, /*lr_factor=*/0.25, /*lr_scale=*/0.5);
  for (size_t i = 0; i < setup.groups.size(); ++i) {
    const auto& options =
        static_cast<const MuonGroupOptions&>(setup.optimizer->param_groups()[i].options());
    const bool muon = setup.groups[i].rule == UpdateRule::kMuon;
    EXPECT_EQ(options.algorithm(), muon ? "muon" : "adamw");
    EXPECT_DOUBLE_EQ(options.lr(),
                     (muon ? 0.04 : 0.002) * 0.25 * 0.5 * setup.groups[i].lr_multiplier);
    EXPECT_DOUBLE_EQ(options.weight_decay(), muon ? 0.01 : 0.0);  // TinyModel: no AdamW decay
  }
  EXPECT_DOUBLE_EQ(base_lr(setup.options), 0.04);
  const std::string table = describe_param_groups(setup);
  EXPECT_NE(table.find("muon: lr 0.04, weight_decay 0.01, 1 parameters: blocks.0.fc.weight"),
            std::string::npos)
      << table;
}

TEST(Muon, BadValuesAndUnknownKeysAreOneLineNamingTheKey) {
  TinyModel model;
  auto message = [&](const std::string& yaml) -> std::string {
    try {
      make_optimizer(*model, YAML::Load(yaml));
    } catch (const UserError& error) {
      return error.what();
    }
    return "";
  };
  EXPECT_NE(message("optim: {name: muon, muon: {ns_steps: 0}}").find("optim.muon.ns_steps"),
            std::string::npos);
  EXPECT_NE(message("optim: {name: muon, muon: {lr: -0.1}}").find("optim.muon.lr"),
            std::string::npos);
  EXPECT_NE(message("optim: {name: muon, adamw: {lr: -0.1}}").find("optim.adamw.lr"),
            std::string::npos);
  EXPECT_NE(message("optim: {name: muon, muon: {lrr: 0.1}}").find("optim.muon.lrr"),
            std::string::npos);
  EXPECT_NE(message("optim: {name: muon, lr: 0.1}").find("optim.lr"), std::string::npos);
  EXPECT_NE(message("optim: {name: muon, muon: {adjust_lr_fn: spectral}}")
                .find("optim.muon.adjust_lr_fn"),
            std::string::npos);
  EXPECT_NE(message("optim: {name: muon, muon: {ns_coefficients: [1, 2]}}")
                .find("optim.muon.ns_coefficients"),
            std::string::npos);
  EXPECT_EQ(message("optim: {name: muon, muon: {nesterov: false, momentum: 0.0}}"), "");
}

TEST(Muon, StateAndGroupOptionsRoundTripThroughSaveAndLoad) {
  TinyModel model;
  const YAML::Node config = YAML::Load("optim: {name: muon}");
  auto setup = make_optimizer(*model, config);
  torch::manual_seed(2);
  for (int step = 0; step < 2; ++step) {
    for (auto& p : model->parameters()) p.mutable_grad() = torch::randn(p.sizes());
    setup.optimizer->step();
  }
  torch::serialize::OutputArchive archive;
  setup.optimizer->save(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);

  TinyModel copy;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < model->parameters().size(); ++i)
    copy->parameters()[i].copy_(model->parameters()[i]);
  auto restored = make_optimizer(*copy, config);
  torch::serialize::InputArchive input;
  std::istringstream in(bytes.str());
  input.load_from(in);
  restored.optimizer->load(input);
  ASSERT_EQ(restored.optimizer->state().size(), setup.optimizer->state().size());
  const auto params = model->parameters(), copy_params = copy->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& a = static_cast<const MuonParamState&>(
        *setup.optimizer->state().at(params[i].unsafeGetTensorImpl()));
    const auto& b = static_cast<const MuonParamState&>(
        *restored.optimizer->state().at(copy_params[i].unsafeGetTensorImpl()));
    EXPECT_EQ(a.momentum_buffer().defined(), b.momentum_buffer().defined());
    if (a.momentum_buffer().defined())
      EXPECT_TRUE(torch::equal(a.momentum_buffer(), b.momentum_buffer()));
    EXPECT_EQ(a.step(), b.step());
    if (a.exp_avg().defined()) EXPECT_TRUE(torch::equal(a.exp_avg_sq(), b.exp_avg_sq()));
  }
  const auto& group =
      static_cast<const MuonGroupOptions&>(restored.optimizer->param_groups()[0].options());
  EXPECT_EQ(group.ns_coefficients(), (std::vector<double>{3.4445, -4.775, 2.0315}));
}

}  // namespace
}  // namespace attnlab
