// Mutation fuzzing (deterministic seed): thousands of random and corrupted override strings and
// YAML files. Each input must either compose or throw UserError — any other exception (a leaked
// yaml-cpp or std exception) or a crash is a bug.
#include <fstream>
#include <random>
#include <sstream>

#include "tests/config/config_test_util.h"
#include "trainer/config/yaml_io.h"

namespace attnlab::config {
namespace {
using testing::TempDir;

// Runs `body`; records a failure naming `input` unless it succeeds or throws UserError.
template <typename F>
void expect_compose_or_user_error(const std::string& input, F body) {
  try {
    body();
  } catch (const UserError&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << "input <<" << input << ">> threw a non-UserError: " << e.what();
  } catch (...) {
    ADD_FAILURE() << "input <<" << input << ">> threw a non-exception";
  }
}

const std::string kAlphabet = "abmdel_.=+~[]{},:'\"$\\()* 019-eE/@#%!&|>?\t";

std::string mutate(std::string s, std::mt19937& rng, int edits) {
  std::uniform_int_distribution<int> pick_char(0, static_cast<int>(kAlphabet.size()) - 1);
  for (int e = 0; e < edits; ++e) {
    size_t pos = s.empty() ? 0 : std::uniform_int_distribution<size_t>(0, s.size())(rng);
    switch (rng() % 4) {
      case 0:
        s.insert(pos, 1, kAlphabet[pick_char(rng)]);
        break;
      case 1:
        if (pos < s.size()) s.erase(pos, 1);
        break;
      case 2:
        if (pos < s.size()) s[pos] = kAlphabet[pick_char(rng)];
        break;
      default: {  // duplicate a chunk
        size_t len = std::uniform_int_distribution<size_t>(0, 8)(rng);
        if (pos < s.size()) s.insert(pos, s.substr(pos, len));
      }
    }
  }
  return s;
}

const std::vector<std::string> kSeeds = {"model.d_model=256",
                                         "+a.b=[1,2,{c: d}]",
                                         "++x={a: 1, b: [x, 'y,z']}",
                                         "~attention.bias",
                                         "optim.lr=3e-4",
                                         "name='my run'",
                                         "run.dir=runs/${name}/${now:%H}",
                                         "seed=1,2,3",
                                         "seed=range(0,4)",
                                         "attention=glob(m*)",
                                         "~model.mlp=gelu",
                                         "data.corpus=[a,b]",
                                         "model=gpt",
                                         "attention=null",
                                         "+experiment=tiny",
                                         "lr_multipliers={emb: 0.1}",
                                         "x=${oc.env:HOME,1}",
                                         "k=choice(a,b)"};

// The shipped default tree, unresolved (so interpolation strings are fuzzed too).
YAML::Node compose_in_base() { return testing::compose_in(testing::source_configs(), {}, false); }

TEST(Fuzz, RandomAndMutatedOverrides) {
  std::mt19937 rng(20240601);
  YAML::Node base = compose_in_base();
  int checked = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string o;
    if (i % 2 == 0) {
      o = mutate(kSeeds[rng() % kSeeds.size()], rng, 1 + static_cast<int>(rng() % 4));
    } else {
      int len = static_cast<int>(rng() % 24);
      for (int k = 0; k < len; ++k) o += kAlphabet[rng() % kAlphabet.size()];
    }
    expect_compose_or_user_error(o, [&] { apply_overrides(base, {o}); });
    ++checked;
  }
  EXPECT_EQ(checked, 4000);
}

TEST(Fuzz, MutatedOverridesThroughComposeAndSweep) {
  std::mt19937 rng(7);
  TempDir d;
  d.write("config.yaml",
          "defaults:\n  - attention: mha\n  - _self_\n  - experiment: null\nname: n\nseed: 1\n"
          "model: {d_model: 4}\nrun: {dir: 'runs/${name}'}\n");
  d.write("attention/mha.yaml", "name: mha\nbias: false\n");
  d.write("attention/moh.yaml", "name: moh\n");
  d.write("experiment/tiny.yaml", "# @package _global_\nname: tiny\n");
  for (int i = 0; i < 600; ++i) {
    std::string o = mutate(kSeeds[rng() % kSeeds.size()], rng, 1 + static_cast<int>(rng() % 3));
    ComposeRequest request;
    request.config_dir = d.path();
    request.overrides = {o};
    expect_compose_or_user_error(o, [&] { compose(request); });
    expect_compose_or_user_error("-m " + o, [&] {
      for (const auto& job : expand_sweep(request)) {
        if (job.index > 3) break;
        compose_sweep_job(request, job);
      }
    });
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Fuzz, CorruptedYamlFiles) {
  std::mt19937 rng(99);
  const std::string src = testing::source_configs();
  const std::vector<std::string> files = {"config.yaml", "model/gpt.yaml", "optim/adamw.yaml",
                                          "experiment/tiny.yaml", "loss/cross_entropy.yaml"};
  TempDir d;
  for (int i = 0; i < 400; ++i) {
    // A fresh copy of a slice of the shipped tree with one file corrupted.
    for (const auto& f : files) d.write(f, read_file(src + "/" + f));
    d.write("scheduler/warmup_cosine.yaml", read_file(src + "/scheduler/warmup_cosine.yaml"));
    d.write("scheduler/constant.yaml", read_file(src + "/scheduler/constant.yaml"));
    for (std::string g :
         {"attention/mha", "tokenizer/byte", "data/moby_dick", "trainer/default", "launcher/local"})
      d.write(g + ".yaml", read_file(src + "/" + g + ".yaml"));
    const std::string& victim = files[rng() % files.size()];
    std::string text = mutate(read_file(src + "/" + victim), rng, 1 + static_cast<int>(rng() % 6));
    d.write(victim, text);
    std::vector<std::string> overrides;
    if (rng() % 2) overrides.push_back("experiment=tiny");
    expect_compose_or_user_error(victim + ":\n" + text,
                                 [&] { testing::compose_in(d.path(), overrides); });
  }
}

}  // namespace
}  // namespace attnlab::config
