// PyTorch interop: our export read by Python's torch.load (and loaded strictly into an equivalent
// torch.nn module), Python's torch.save files (zip + legacy, OrderedDict state_dicts, strided,
// int64, bfloat16, single-entry dicts) read by read_weights, and partial loading reports.
// Values are compared exactly via JSON dumps written by the producing side.
#include "io/weights_io.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <yaml-cpp/yaml.h>

#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/error.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/checkpoint.h"
#include "trainer/weight_sources.h"

namespace attnlab {
namespace {
using testing::TempDir;
using testing::TinyModel;

// The Python twin of TinyModel (same state_dict keys and shapes).
const char* kPythonModel = R"PY(
import json, sys, torch
from torch import nn
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.norm = nn.Parameter(torch.ones(4))
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.blocks = nn.ModuleList([Block(), Block()])
        self.final_norm = nn.LayerNorm(4)
        self.register_buffer("step_buffer", torch.zeros(2))
def dump(d, path):
    json.dump({k: {"shape": list(v.shape), "dtype": str(v.dtype),
                   "values": v.double().flatten().tolist()} for k, v in d.items()}, open(path, "w"))
)PY";

bool run_python(const TempDir& dir, const std::string& body, const std::string& args) {
  std::ofstream(dir / "script.py") << kPythonModel << body;
  std::string cmd = "'" + ::attnlab::testing::project_python() + "' " + (dir / "script.py") + " " +
                    args + " > " + (dir / "py.log") + " 2>&1";
  bool ok = std::system(cmd.c_str()) == 0;
  if (!ok) {
    std::ifstream log(dir / "py.log");
    std::cerr << log.rdbuf();
  }
  return ok;
}

void expect_matches_json(const StateDict& weights, const std::string& json_path,
                         const std::vector<std::string>& only = {}) {
  auto expected = nlohmann::json::parse(std::ifstream(json_path));
  for (const auto& item : expected.items()) {
    if (!only.empty() && std::find(only.begin(), only.end(), item.key()) == only.end()) continue;
    ASSERT_TRUE(weights.count(item.key())) << item.key();
    const auto& t = weights.at(item.key());
    EXPECT_EQ(t.sizes().vec(), item.value()["shape"].get<std::vector<int64_t>>()) << item.key();
    auto values = item.value()["values"].get<std::vector<double>>();
    auto flat = t.to(torch::kFloat64).contiguous().flatten();
    ASSERT_EQ(flat.numel(), static_cast<int64_t>(values.size()));
    EXPECT_TRUE(torch::equal(flat, torch::tensor(values, torch::kFloat64))) << item.key();
  }
}

TEST(WeightsIo, ExportIsReadByPythonTorchLoad) {
  REQUIRE_PYTHON_WITH("torch");
  TempDir dir;
  torch::manual_seed(3);
  TinyModel model;
  model->buffer.copy_(torch::tensor({1.5, -2.0}));
  save_weights_file(dir / "model.pt", state_dict(*model));
  nlohmann::json expected;
  for (const auto& [name, t] : state_dict(*model)) {
    auto flat = t.to(torch::kFloat64).flatten();
    expected[name] = {{"shape", t.sizes().vec()},
                      {"values", std::vector<double>(flat.data_ptr<double>(),
                                                     flat.data_ptr<double>() + flat.numel())}};
  }
  std::ofstream(dir / "expected.json") << expected.dump();
  ASSERT_TRUE(run_python(dir, R"PY(
d = torch.load(sys.argv[1])
exp = json.load(open(sys.argv[2]))
assert isinstance(d, dict), type(d)
assert sorted(d) == sorted(exp), (sorted(d), sorted(exp))
for k, v in exp.items():
    assert d[k].dtype == torch.float32, (k, d[k].dtype)
    assert list(d[k].shape) == v["shape"], k
    assert torch.equal(d[k].double().flatten(), torch.tensor(v["values"], dtype=torch.float64)), k
m = Tiny()
m.load_state_dict(d, strict=True)
assert torch.equal(m.step_buffer, torch.tensor([1.5, -2.0]))
)PY",
                         (dir / "model.pt") + " " + (dir / "expected.json")));
}

TEST(WeightsIo, ReadsPythonTorchSaveZipAndLegacyAndPartialLoad) {
  REQUIRE_PYTHON_WITH("torch");
  TempDir dir;
  ASSERT_TRUE(run_python(dir, R"PY(
out = sys.argv[1]
torch.manual_seed(0)
sd = Tiny().state_dict()                       # an OrderedDict with _metadata
sd["blocks.0.fc.bias"] = torch.randn(5)        # shape mismatch
sd["extra.weight"] = torch.randn(2, 2)         # unexpected
del sd["final_norm.bias"]                      # missing
torch.save(sd, out + "/zip.pt")
torch.save(sd, out + "/legacy.pt", _use_new_zipfile_serialization=False)
dump(sd, out + "/sd.json")
odd = {"strided": torch.randn(3, 4).t(), "i64": torch.arange(5), "bf16": torch.randn(3).bfloat16(),
       "offset": torch.arange(10.)[3:7], "param": nn.Parameter(torch.randn(2))}
torch.save(odd, out + "/odd.pt")
dump(odd, out + "/odd.json")
torch.save({"only": torch.ones(2)}, out + "/single.pt")   # single entry: SETITEM opcode
torch.save({"model": {"w": torch.ones(3)}, "step": 7}, out + "/nested.pt")
)PY",
                         dir.str()));

  for (const char* file : {"zip.pt", "legacy.pt"}) {
    SCOPED_TRACE(file);
    StateDict weights = read_weights(dir / file);
    EXPECT_EQ(weights.size(), 10u);  // 9 params + buffer - 1 deleted + 1 extra + 0
    expect_matches_json(weights, dir / "sd.json");

    TinyModel model;
    auto before = state_dict(*model);
    auto snapshot = before.at("final_norm.bias").clone();
    EXPECT_THROW(load_state_dict(*model, weights, /*strict=*/true), UserError);
    EXPECT_TRUE(torch::equal(state_dict(*model).at("embed.weight"), before.at("embed.weight")));
    LoadReport report = load_state_dict(*model, weights, /*strict=*/false);
    EXPECT_EQ(report.missing, std::vector<std::string>{"final_norm.bias"});
    EXPECT_EQ(report.unexpected, std::vector<std::string>{"extra.weight"});
    ASSERT_EQ(report.mismatched.size(), 1u);
    EXPECT_EQ(report.mismatched[0].rfind("blocks.0.fc.bias: weights [5] vs model [4]", 0), 0u)
        << report.mismatched[0];
    EXPECT_EQ(report.loaded.size(), 8u);
    EXPECT_NE(report.summary().find("extra.weight"), std::string::npos);
    auto after = state_dict(*model);
    expect_matches_json(after, dir / "sd.json", report.loaded);
    EXPECT_TRUE(torch::equal(after.at("final_norm.bias"), snapshot));  // kept at init
  }
  StateDict odd = read_weights(dir / "odd.pt");
  expect_matches_json(odd, dir / "odd.json");
  EXPECT_EQ(odd.at("i64").scalar_type(), torch::kInt64);
  EXPECT_EQ(odd.at("bf16").scalar_type(), torch::kBFloat16);
  EXPECT_EQ(read_weights(dir / "single.pt").at("only").sum().item<float>(), 2.0f);
  EXPECT_EQ(read_weights(dir / "nested.pt").count("w"), 1u);
}

TEST(WeightsIo, BadFilesAreUserErrors) {
  TempDir dir;
  std::ofstream(dir / "junk.pt") << "this is not a torch file";
  EXPECT_THROW(read_weights(dir / "junk.pt"), UserError);
  EXPECT_THROW(read_weights(dir / "missing.pt"), UserError);
  TinyModel model;
  save_weights_file(dir / "ours.pt", state_dict(*model));
  auto bytes = std::filesystem::file_size(dir / "ours.pt");
  std::filesystem::resize_file(dir / "ours.pt", bytes / 2);
  EXPECT_THROW(read_weights(dir / "ours.pt"), UserError);
}

TEST(WeightsIo, InitFromCheckpointAndExportCommand) {
  TempDir dir;
  torch::manual_seed(11);
  TinyModel source;
  save_checkpoint(dir / "run", *source, nullptr, TrainState{}, "");
  TinyModel target;
  auto report = init_from_config(*target, YAML::Load("init_from: " + (dir / "run")));
  EXPECT_TRUE(report.complete());
  for (const auto& [name, t] : state_dict(*source))
    EXPECT_TRUE(torch::equal(t, state_dict(*target).at(name))) << name;
  EXPECT_TRUE(init_from_config(*target, YAML::Load("seed: 1")).loaded.empty());
  // init_from of a model with other sizes loaded 0 of its tensors and trained from scratch with
  // exit 0: with nothing to load it is an error that says so.
  torch::nn::Linear other(torch::nn::LinearOptions(3, 5));
  try {
    init_from_config(*other, YAML::Load("init_from: " + (dir / "run")));
    ADD_FAILURE() << "loaded nothing without an error";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("none of the model's tensors fit"), std::string::npos)
        << error.what();
  }

  EXPECT_EQ(testing::run_command_quietly(
                "export", {"run_dir=" + (dir / "run"), "out=" + (dir / "exported.pt")}),
            0);
  StateDict exported = read_weights(dir / "exported.pt");  // our own pickle_save output
  for (const auto& [name, t] : state_dict(*source)) EXPECT_TRUE(torch::equal(t, exported.at(name)));
  EXPECT_THROW(testing::run_command_quietly("export", {"run_dir=" + (dir / "run"), "output=x.pt"}),
               UserError);
}

// export chooses its checkpoint as eval and sample do: best (best.ckpt) by default, or
// checkpoint=latest|<path>.
TEST(WeightsIo, ExportChoosesBestLatestOrAPathLikeEvalAndSample) {
  TempDir dir;
  torch::manual_seed(12);
  TinyModel best_model, latest_model;
  TrainState state;
  state.step = 1;
  SaveOptions best_options;
  best_options.is_best = true;
  const std::string best_file =
      save_checkpoint(dir / "run", *best_model, nullptr, state, "", best_options);
  state.step = 2;
  save_checkpoint(dir / "run", *latest_model, nullptr, state, "");
  auto exported_equals = [&](const std::vector<std::string>& extra, TinyModel& expected) {
    std::vector<std::string> args = {"run_dir=" + (dir / "run"), "out=" + (dir / "e.pt")};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_EQ(testing::run_command_quietly("export", args), 0);
    StateDict exported = read_weights(dir / "e.pt");
    bool equal = true;
    for (const auto& [name, t] : state_dict(*expected))
      equal = equal && torch::equal(t, exported.at(name));
    return equal;
  };
  EXPECT_TRUE(exported_equals({}, best_model));
  EXPECT_TRUE(exported_equals({"checkpoint=best"}, best_model));
  EXPECT_TRUE(exported_equals({"checkpoint=latest"}, latest_model));
  EXPECT_TRUE(exported_equals({"checkpoint=" + best_file}, best_model));
}

// The files in `dir` whose names end in ".tmp" (what write_file_atomic leaves when it fails).
std::vector<std::string> temporaries(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) out.push_back(name);
  }
  return out;
}

std::string export_error(const std::vector<std::string>& args) {
  try {
    testing::run_command_quietly("export", args);
  } catch (const UserError& error) {
    return error.what();
  }
  return "";
}

// export out= (empty) left ./.tmp; out=<folder> (format=pt) left <folder>.tmp; a full disk left
// m.pt.tmp; exporting through a symbolic link replaced the link with a file.
TEST(WeightsIo, ExportLeavesNoTemporariesAndWritesThroughALink) {
  TempDir dir;
  torch::manual_seed(13);
  TinyModel source;
  save_checkpoint(dir / "run", *source, nullptr, TrainState{}, "");
  const std::string run = "run_dir=" + (dir / "run");

  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  const std::string empty = export_error({run, "out="});
  std::filesystem::current_path(cwd);
  EXPECT_NE(empty.find("out= is empty"), std::string::npos) << empty;
  EXPECT_TRUE(temporaries(dir.path()).empty());

  std::filesystem::create_directories(dir / "folder");
  const std::string folder = export_error({run, "out=" + (dir / "folder")});
  EXPECT_NE(folder.find("is a folder"), std::string::npos) << folder;
  EXPECT_TRUE(temporaries(dir.path()).empty());

  // A file size limit stands in for a full disk (the write fails with EFBIG instead of ENOSPC).
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old_limit;
  small.rlim_cur = 512;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string full = export_error({run, "out=" + (dir / "m.pt")});
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(full.find("cannot write"), std::string::npos) << full;
  EXPECT_FALSE(std::filesystem::exists(dir / "m.pt"));
  EXPECT_TRUE(temporaries(dir.path()).empty());

  std::filesystem::create_directories(dir / "models");
  std::ofstream(dir / "models/real.pt") << "old";
  std::filesystem::create_symlink("models/real.pt", dir / "link.pt");
  EXPECT_EQ(testing::run_command_quietly("export", {run, "out=" + (dir / "link.pt")}), 0);
  EXPECT_TRUE(std::filesystem::is_symlink(dir / "link.pt"));
  const StateDict through_link = read_weights(dir / "models/real.pt");
  for (const auto& [name, t] : state_dict(*source))
    EXPECT_TRUE(torch::equal(t, through_link.at(name)));
  EXPECT_TRUE(temporaries(dir.path()).empty());
  EXPECT_TRUE(temporaries(dir / "models").empty());
}

}  // namespace
}  // namespace attnlab
