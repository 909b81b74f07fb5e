// Fuzzing with deterministic seeds: over 5,000 random, mutated and generated override strings
// and YAML config trees (the generated ones full of the hostile constructs of issue 17: alias
// bombs, recursive aliases, deep nesting, long keys, unclosed quotes, interpolation chains,
// defaults-list cycles, group options that are paths). Each input must either compose or throw
// a UserError whose message is one line and names the input: the override (as typed, or its key)
// or a file of the tree, or for an interpolation the key it sits at. Any other exception, a crash,
// or an input that runs longer than 5 s (a watchdog ends the process naming the input) is a bug.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "config/yaml_io.h"
#include "config/yaml_tree.h"
#include "tests/support/config_test_util.h"

namespace attnlab::config {
namespace {
using testing::TempDir;

// Ends the process, naming the input, when one input runs longer than the limit: a hang would
// otherwise only show as a ctest timeout without the input.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void start(const std::string& input) {
    std::lock_guard<std::mutex> lock(mutex_);
    input_ = input.substr(0, 2000);
    started_ = Clock::now();
    active_ = true;
  }
  void finish() {
    std::lock_guard<std::mutex> lock(mutex_);
    active_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      wake_.wait_for(lock, std::chrono::milliseconds(100));
      if (active_ && Clock::now() - started_ > limit_) {
        std::fprintf(stderr, "FAILED: input <<%s>> ran longer than %lld s (a hang)\n",
                     input_.c_str(), static_cast<long long>(limit_.count()));
        std::fflush(stderr);
        std::_Exit(1);
      }
    }
  }
  const std::chrono::seconds limit_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string input_;
  Clock::time_point started_;
  bool active_ = false;
  bool stop_ = false;
  std::thread thread_;
};

Watchdog& watchdog() {
  static Watchdog dog(std::chrono::seconds(5));
  return dog;
}

// What an error about `override_text` may name: the override as typed (long ones are quoted by
// their first 100 bytes) or its key or a parent of it, each quoted.
void add_override_names(const std::string& override_text, std::vector<std::string>& names) {
  names.push_back("'" + override_text.substr(0, 100));
  size_t start = override_text.find_first_not_of("+~");
  if (start == std::string::npos) return;
  std::string key = override_text.substr(start, override_text.find('=') - start);
  for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1))
    names.push_back("'" + key.substr(0, dot) + "'");
  names.push_back("'" + key + "'");
}

bool names_the_input(const std::string& message, const std::vector<std::string>& names) {
  if (message.rfind("interpolation at '", 0) == 0) return true;  // names the key it sits at
  for (const auto& name : names)
    if (message.find(name) != std::string::npos) return true;
  return false;
}

int inputs_checked = 0;

// Runs `body` under the watchdog; records a failure naming `input` unless it succeeds or throws
// a UserError whose message contains one of `names` (see names_the_input).
template <typename F>
void expect_compose_or_user_error(const std::string& input, const std::vector<std::string>& names,
                                  F body) {
  ++inputs_checked;
  watchdog().start(input);
  try {
    body();
  } catch (const UserError& e) {
    EXPECT_TRUE(names_the_input(e.what(), names))
        << "input <<" << input << ">>: the error names no key or file of it: " << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos)
        << "input <<" << input << ">>: the error is not one line: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "input <<" << input << ">> threw a non-UserError: " << e.what();
  } catch (...) {
    ADD_FAILURE() << "input <<" << input << ">> threw a non-exception";
  }
  watchdog().finish();
}

std::vector<std::string> override_names(const std::vector<std::string>& overrides) {
  std::vector<std::string> names;
  for (const auto& o : overrides) add_override_names(o, names);
  return names;
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
    expect_compose_or_user_error(o, override_names({o}), [&] { apply_overrides(base, {o}); });
    ++checked;
  }
  EXPECT_EQ(checked, 4000);
}

TEST(Fuzz, MutatedOverridesThroughComposeAndSweep) {
  std::mt19937 rng(7);
  TempDir d(testing::scratch_base());
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
    expect_compose_or_user_error(o, override_names({o}), [&] { compose(request); });
    expect_compose_or_user_error("-m " + o, override_names({o}), [&] {
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
  TempDir d(testing::scratch_base());
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
    std::vector<std::string> names = override_names(overrides);
    names.insert(names.end(), files.begin(), files.end());
    for (std::string g : {"scheduler/warmup_cosine", "scheduler/constant", "attention/mha",
                          "tokenizer/byte", "data/moby_dick", "trainer/default", "launcher/local"})
      names.push_back(g + ".yaml");
    expect_compose_or_user_error(victim + ":\n" + text, names,
                                 [&] { testing::compose_in(d.path(), overrides); });
  }
}

// Random config text from a small grammar that favours what breaks parsers and composers: the
// hostile constructs of issue 17 next to ordinary keys, values, defaults lists and packages.
class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  int pick(int n) { return static_cast<int>(rng_() % static_cast<uint32_t>(n)); }
  bool chance(int percent) { return pick(100) < percent; }

  std::string key() {
    static const std::vector<std::string> kKeys = {"a",     "b",     "c",   "name", "w",
                                                   "seed",  "model", "run", "x.y",  "'q k'",
                                                   "\"d\"", "1",     "k-k", "é"};
    static const std::vector<std::string> kHostileKeys = {"_self_", "defaults", "~", "${a}"};
    if (hostile_ && chance(3)) return std::string(200 + pick(200), 'k');  // near the key limit
    if (hostile_ && chance(10)) return kHostileKeys[pick(static_cast<int>(kHostileKeys.size()))];
    return kKeys[pick(static_cast<int>(kKeys.size()))];
  }

  std::string dotted_key() {
    std::string k = key_word();
    for (int parts = pick(4); parts > 0; --parts) k += "." + key_word();
    if (hostile_ && chance(5)) {  // very deep dotted keys
      for (int n = 40 + pick(40); n > 0; --n) k += ".a";
    }
    return k;
  }

  // A scalar; in a flow collection, text with flow indicators is quoted as YAML requires.
  std::string scalar(bool in_flow) {
    std::string text = any_scalar();
    if (in_flow && text[0] != '\'' && text[0] != '"' &&
        text.find_first_of("{}[],") != std::string::npos)
      return "'" + text + "'";
    return text;
  }

  std::string any_scalar() {
    if (hostile_ && chance(4)) return chance(50) ? "'unclosed" : "\"unclosed";
    if (hostile_ && chance(4)) return std::string(pick(3000), 'v');
    switch (pick(20)) {
      case 0:
        return "1";
      case 1:
        return "-3.5e-4";
      case 2:
        return "true";
      case 3:
        return "null";
      case 4:
        return "~";
      case 5:
        return "'quoted'";
      case 6:
        return "\"dq \\\"x\\\"\"";
      case 7:
        return "'it''s'";
      case 8:
        return "${a}";
      case 9:
        return "'${b.c}'";
      case 10:
        return "x${a}y";
      case 11:
        return "${oc.env:HOME,d}";
      case 12:
        return "${now:%Y}";
      case 13:
        return "\\${esc}";
      case 14:
        return "${..a}";
      case 15:
        return "${" + dotted_key() + "}";
      case 16:
        return "!!str 12";
      case 17:
        return "!!int x";
      case 18:
        return ".inf";
      default:
        return "word" + std::to_string(pick(10));
    }
  }

  // A flow-style value (one line).
  std::string flow(int depth) {
    if (depth > 3 || chance(45)) return alias_or(scalar(true));
    if (hostile_ && chance(10)) {  // deep nesting, around the limit
      int n = 50 + pick(40);
      return std::string(n, '[') + "1" + std::string(n, ']');
    }
    std::string out;
    bool list = chance(50);
    int n = pick(4);
    out += list ? "[" : "{";
    for (int i = 0; i < n; ++i) {
      if (i) out += ", ";
      if (!list) out += key_word() + ": ";
      out += flow(depth + 1);
    }
    out += list ? "]" : "}";
    return anchored(out);
  }

  // A block mapping at `indent` spaces.
  std::string block(int indent, int depth) {
    std::string out;
    for (int n = 1 + pick(4); n > 0; --n) {
      out += std::string(indent, ' ') + key() + ":";
      if (depth < 4 && chance(25)) {
        out += "\n" + block(indent + 2, depth + 1);
      } else if (depth < 4 && chance(10)) {
        out += "\n";
        for (int i = 1 + pick(3); i > 0; --i)
          out += std::string(indent + 2, ' ') + "- " + flow(depth + 1) + "\n";
      } else {
        out += " " + (chance(50) ? alias_or(scalar(false)) : flow(depth)) + "\n";
      }
    }
    return out;
  }

  std::string defaults(const std::vector<std::string>& groups) {
    static const std::vector<std::string> kOptions = {"a", "b", "x", "null", "missing", "c"};
    static const std::vector<std::string> kHostileOptions = {"../a", "sub/a", ".a", "[a, b]"};
    std::string out = "defaults:\n";
    for (int n = pick(5); n > 0; --n) {
      std::string group = groups[pick(static_cast<int>(groups.size()))];
      std::string option = hostile_ && chance(30)
                               ? kHostileOptions[pick(static_cast<int>(kHostileOptions.size()))]
                               : kOptions[pick(static_cast<int>(kOptions.size()))];
      switch (pick(9)) {
        case 0:
          out += "  - _self_\n";
          break;
        case 1:
          out += "  - override /" + group + ": " + option + "\n";
          break;
        case 2:
          out += "  - optional " + group + ": " + option + "\n";
          break;
        case 3:
          out += "  - " + group + "@" + dotted_key() + ": " + option + "\n";
          break;
        case 4:
          out += "  - inc\n";
          break;  // a config of the same folder (inc.yaml may loop)
        case 5:
          out += "  - " + flow(2) + "\n";
          break;
        default:
          out += "  - " + group + ": " + option + "\n";
      }
    }
    return out;
  }

  std::string header() {
    switch (pick(6)) {
      case 0:
        return "# @package _global_\n";
      case 1:
        return "# @package " + dotted_key() + "\n";
      case 2:
        return hostile_ ? "# @package\n" : "";
      default:
        return "";
    }
  }

  // Text for one config file: a header, a defaults list, content; one file in four is hostile
  // (unclosed quotes, long keys, deep nesting, bombs, recursive aliases), the others are not.
  std::string file(const std::vector<std::string>& groups) {
    anchors_ = 0;
    hostile_ = chance(25);
    std::string out = header();
    if (chance(50)) out += defaults(groups);
    if (hostile_ && chance(15)) out += bomb();
    out += chance(85) ? block(0, 0) : flow(0) + "\n";
    if (hostile_ && chance(10)) out += "&r r: &s [*s]\n";
    return out;
  }

  std::string bomb() {
    std::string out = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int level = 1; level < 8; ++level) {
      std::string p = "*l" + std::to_string(level - 1);
      out += "l" + std::to_string(level) + ": &l" + std::to_string(level) + " [" + p + ", " + p +
             ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + "]\n";
    }
    return out;
  }

  std::string override_text() {
    static const std::vector<std::string> kGroups = {"model", "experiment", "db/sub", "attention"};
    static const std::vector<std::string> kOps = {"", "", "", "+", "++", "~"};
    hostile_ = chance(25);
    std::string op = kOps[pick(static_cast<int>(kOps.size()))];
    const bool group = chance(30);
    std::string key = group ? kGroups[pick(static_cast<int>(kGroups.size()))] : dotted_key();
    if (op == "~" && chance(50)) return op + key;
    std::string value;
    if (hostile_) {
      switch (pick(6)) {
        case 0:
          value = "../../../tmp/evil";
          break;
        case 1:
          value = "a,b";
          break;
        case 2:
          value = "range(0," + std::to_string(pick(5)) + ")";
          break;
        case 3:
          value = "glob(*)";
          break;
        case 4:
          value = "'${a}'";
          break;
        default:
          value = flow(1);
      }
    } else {
      static const std::vector<std::string> kOptions = {"a", "b", "x", "c", "null"};
      value = group ? kOptions[pick(static_cast<int>(kOptions.size()))] : flow(1);
    }
    return op + key + "=" + value;
  }

 private:
  std::string key_word() {
    static const std::vector<std::string> kWords = {"a", "b", "c", "model", "w", "x", "run"};
    return kWords[pick(static_cast<int>(kWords.size()))];
  }
  std::string anchored(const std::string& value) {
    if (!chance(15)) return value;
    return "&n" + std::to_string(++anchors_) + " " + value;
  }
  std::string alias_or(const std::string& value) {
    // Aliases to anchors defined earlier, and in hostile text also to ones not (yet) defined.
    if (anchors_ > 0 && chance(15))
      return "*n" + std::to_string(1 + pick(anchors_ + (hostile_ ? 1 : 0)));
    return anchored(value);
  }

  std::mt19937 rng_;
  int anchors_ = 0;
  bool hostile_ = true;
};

TEST(Fuzz, GeneratedOverrides) {
  Generator gen(1701);
  YAML::Node base = compose_in_base();
  TempDir d(testing::scratch_base());
  d.write("config.yaml",
          "defaults:\n  - model: a\n  - _self_\n  - experiment: null\na: 1\n"
          "b: {c: 2}\nrun: {dir: x}\n");
  d.write("model/a.yaml", "w: 1\n");
  d.write("experiment/x.yaml", "# @package _global_\na: 3\n");
  const int before = inputs_checked;
  for (int i = 0; i < 1500; ++i) {
    std::vector<std::string> overrides = {gen.override_text()};
    if (gen.chance(30)) overrides.push_back(gen.override_text());
    std::vector<std::string> names = override_names(overrides);
    std::string shown;
    for (const auto& o : overrides) shown += o + " ";
    if (i % 4 == 0) {
      ComposeRequest request;
      request.config_dir = d.path();
      request.overrides = overrides;
      expect_compose_or_user_error(shown, names, [&] { compose(request); });
    } else {
      expect_compose_or_user_error(shown, names, [&] { apply_overrides(base, overrides); });
    }
  }
  EXPECT_EQ(inputs_checked - before, 1500);
}

TEST(Fuzz, GeneratedConfigTrees) {
  Generator gen(4242);
  const std::vector<std::string> groups = {"model", "experiment", "db/sub", "nothing"};
  const std::vector<std::string> files = {"config.yaml",       "model/a.yaml",  "model/b.yaml",
                                          "experiment/x.yaml", "db/sub/c.yaml", "inc.yaml"};
  const int before = inputs_checked;
  TempDir d(testing::scratch_base());
  for (int i = 0; i < 1200; ++i) {
    std::string shown;
    for (const auto& f : files) {
      if (f != "config.yaml" && gen.chance(20)) {
        std::filesystem::remove(d.path() + "/" + f);
        continue;
      }
      std::string text = gen.file(groups);
      d.write(f, text);
      shown += "--- " + f + "\n" + text;
    }
    std::vector<std::string> overrides;
    for (int n = gen.pick(3); n > 0; --n) overrides.push_back(gen.override_text());
    for (const auto& o : overrides) shown += "--- override " + o + "\n";
    std::vector<std::string> names = override_names(overrides);
    names.insert(names.end(), files.begin(), files.end());
    expect_compose_or_user_error(shown, names, [&] {
      YAML::Node config = testing::compose_in(d.path(), overrides);
      // What a run saves must load again (or fail as cleanly).
      parse_yaml(to_yaml(config), d.path() + "/config.yaml");
    });
  }
  EXPECT_EQ(inputs_checked - before, 1200);
}

}  // namespace
}  // namespace attnlab::config
