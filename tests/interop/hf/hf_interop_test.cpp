// Hugging Face interop against the real `transformers` and `safetensors` packages: small random
// Llama / Llama (tied, biased) / Qwen2 / Mistral / GPT-2 models saved by save_pretrained (one
// sharded) are imported, their attnlab logits compared with transformers' in float64 and float32,
// exported back and reloaded by AutoModelForCausalLM (no missing or unexpected keys, same logits);
// the CLI path (import, init_from=, train, export) end to end; bad folders and files fail with
// one line and exit 2, leaving nothing behind.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/subprocess.h"
#include "interop/hf/hf_model.h"
#include "interop/hf/pretrained_config.h"
#include "io/safetensors.h"
#include "io/weights_io.h"
#include "modules/gpt.h"
#include "tests/support/attnlab_command.h"
#include "tests/support/python.h"
#include "tests/support/train_runs.h"
#include "trainer/run_setup.h"
#include "trainer/weight_sources.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using attnlab::test::run_attnlab;

const std::vector<std::string> kCases = {"llama", "llama_tied_bias", "qwen2", "mistral", "gpt2"};

std::string script() { return std::string(ATTNLAB_SOURCE_DIR) + "/scripts/ref/hf_interop.py"; }

int run_python(const std::string& args, std::string* output = nullptr) {
  const auto run = attnlab::testing::run_command("'" + project_python() + "' " + args);
  if (output) *output = run.output;
  return run.exit_code;
}

// The reference folders, made once and shared by the test processes ctest starts (concurrently
// under -j): keyed by the script's contents, written under a temporary name and renamed.
const std::string& reference_dir() {
  static const std::string dir = [] {
    std::ifstream in(script());
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    const fs::path base = fs::path(ATTNLAB_BINARY_DIR) / "test_hf_tmp";
    const fs::path done = base / ("hf_reference-" + std::to_string(std::hash<std::string>{}(text)));
    if (fs::exists(done / "complete")) return done.string();
    const fs::path partial = base / ("partial-" + std::to_string(::getpid()));
    fs::remove_all(partial);
    fs::create_directories(partial);
    std::string output;
    const int code = run_python("'" + script() + "' make '" + partial.string() + "'", &output);
    if (code != 0) ADD_FAILURE() << "hf_interop.py make failed:\n" << output;
    std::ofstream(partial / "complete") << "ok\n";
    std::error_code error;
    fs::rename(partial, done, error);  // another process may have finished first: use its copy
    if (error) fs::remove_all(partial);
    return done.string();
  }();
  return dir;
}

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got.to(torch::kFloat64) - want).abs().max() / want.abs().max()).item<double>();
}

// An attnlab model of the folder's architecture with its weights (strict: every tensor placed).
Gpt imported_model(const std::string& folder, YAML::Node* config_out = nullptr) {
  const HfArchitecture architecture = read_hf_architecture(folder);
  std::vector<std::string> overrides;
  for (const auto& [key, value] : architecture.settings)
    if (key.rfind("tokenizer", 0) != 0) overrides.push_back(key + "=" + value);
  YAML::Node config = attnlab::testing::compose_shipped(overrides);
  Gpt model = build_model(config, architecture.vocab_size);
  HfWeights weights = read_hf_weights(architecture);
  EXPECT_TRUE(weights.unmapped.empty()) << weights.unmapped.front();
  load_state_dict(*model, weights.tensors, /*strict=*/true);
  // What `attnlab import` checks against without building the model is exactly the model's.
  std::map<std::string, std::vector<int64_t>> built;
  for (const auto& [name, tensor] : state_dict(*model)) built[name] = tensor.sizes().vec();
  EXPECT_EQ(expected_attnlab_shapes(architecture), built);
  if (config_out) *config_out = config;
  return model;
}

torch::Tensor logits_of(Gpt& model, const torch::Tensor& ids, torch::ScalarType dtype) {
  model->to(dtype);
  model->eval();
  torch::NoGradGuard no_grad;
  return model->forward(ids).logits.to(torch::kFloat64);
}

TEST(HfImport, LogitsMatchTransformersInEveryFamily) {
  REQUIRE_PYTHON_WITH("transformers");
  for (const auto& name : kCases) {
    SCOPED_TRACE(name);
    const fs::path dir = fs::path(reference_dir()) / name;
    Gpt model = imported_model((dir / "hf").string());
    SafetensorsFile reference((dir / "reference.safetensors").string());
    const torch::Tensor ids = reference.tensor("ids");
    // float64: transformers computes RoPE angles in float32 even for a float64 model (attnlab in
    // float64), hence 1e-6 rather than ~1e-12; GPT-2 has no RoPE and agrees to rounding.
    const double tol64 = name == "gpt2" ? 1e-10 : 1e-6;
    EXPECT_LE(relative_error(logits_of(model, ids, torch::kFloat64), reference.tensor("logits64")),
              tol64);
    EXPECT_LE(relative_error(logits_of(model, ids, torch::kFloat32), reference.tensor("logits32")),
              1e-5);
  }
}

TEST(HfExport, TransformersReloadsEveryFamilyWithTheSameLogits) {
  REQUIRE_PYTHON_WITH("transformers");
  std::string pairs;
  for (const auto& name : kCases) {
    SCOPED_TRACE(name);
    const fs::path dir = fs::path(reference_dir()) / name;
    YAML::Node config;
    Gpt model = imported_model((dir / "hf").string(), &config);
    const std::string out = attnlab::testing::scratch_run_dir("hf_export_" + name);
    HfExportOptions options;
    options.max_shard_bytes = 40000;  // several shards + index for every case
    const HfExportResult result = export_hf_folder(state_dict(*model), config, out, options);
    EXPECT_EQ(result.model_type, name == "gpt2" ? "gpt2" : name == "qwen2" ? "qwen2" : "llama");
    EXPECT_TRUE(fs::exists(fs::path(out) / "model.safetensors.index.json"));
    pairs += " '" + out + "' '" + (dir / "reference.safetensors").string() + "'";
  }
  // One Python process checks every folder (importing transformers takes seconds).
  std::string output;
  EXPECT_EQ(run_python("'" + script() + "' check" + pairs, &output), 0) << output;
  size_t ok = 0;
  for (size_t at = output.find("\"ok\": true"); at != std::string::npos;
       at = output.find("\"ok\": true", at + 1))
    ++ok;
  EXPECT_EQ(ok, kCases.size()) << output;
}

TEST(HfExport, ModulesWithoutATransformersClassKeepAttnlabsLayout) {
  REQUIRE_PYTHON_WITH("transformers");
  // A hybrid MHA/MoH stack: no transformers class; attnlab's names and a config that says so.
  YAML::Node config =
      attnlab::testing::compose_shipped({"model.d_model=32", "model.n_layers=4", "model.n_heads=4",
                                         "model.attention_per_layer='mha*3,moh'"});
  Gpt model = build_model(config, 300);
  const std::string out = attnlab::testing::scratch_run_dir("hf_export_hybrid");
  const HfExportResult result = export_hf_folder(state_dict(*model), config, out, {});
  EXPECT_EQ(result.model_type, "attnlab");
  EXPECT_NE(result.reason.find("hybrid"), std::string::npos) << result.reason;
  nlohmann::json written = nlohmann::json::parse(std::ifstream(fs::path(out) / "config.json"));
  EXPECT_EQ(written["model_type"], "attnlab");
  EXPECT_EQ(written["attnlab_config"]["model"]["attention_per_layer"], "mha*3,moh");
  // The safetensors hold attnlab's names, readable by the safetensors package.
  StateDict reread = read_weights((fs::path(out) / "model.safetensors").string());
  EXPECT_EQ(reread.size(), state_dict(*model).size());
  for (const auto& [key, tensor] : state_dict(*model))
    EXPECT_TRUE(torch::equal(reread.at(key), tensor)) << key;
  std::string output;
  EXPECT_EQ(run_python("-c \"from safetensors import safe_open; f = safe_open('" + out +
                           "/model.safetensors', 'pt'); print(len(list(f.keys())))\"",
                       &output),
            0)
      << output;
  EXPECT_EQ(std::stoul(output), state_dict(*model).size());
}

// An all-MHA stack whose layers differ in their options (a NoPE layer: {name: mha, rope: false})
// is not what a transformers class builds (one attention setting for all layers): it keeps
// attnlab's layout and says why. Layers that repeat the group's options export as Llama.
TEST(HfExport, PerLayerAttentionOptionsKeepAttnlabsLayout) {
  const std::vector<std::string> sizes = {"model=llama", "model.d_model=32", "model.n_layers=2",
                                          "model.n_heads=4", "model.n_kv_heads=4"};
  YAML::Node nope = attnlab::testing::compose_shipped(
      sizes, {"model.attention_per_layer=[mha, {name: mha, rope: false}]"});
  Gpt model = build_model(nope, 300);
  HfExportResult result = export_hf_folder(state_dict(*model), nope,
                                           attnlab::testing::scratch_run_dir("hf_export_nope"), {});
  EXPECT_EQ(result.model_type, "attnlab");
  EXPECT_NE(result.reason.find("layer 1's attention.rope differs from the attention group's"),
            std::string::npos)
      << result.reason;
  YAML::Node same =
      attnlab::testing::compose_shipped(sizes, {"model.attention_per_layer=[mha, {name: mha}]"});
  model = build_model(same, 300);
  result = export_hf_folder(state_dict(*model), same,
                            attnlab::testing::scratch_run_dir("hf_export_same"), {});
  EXPECT_EQ(result.model_type, "llama") << result.reason;
}

TEST(HfCli, ImportFineTuneAndExportRoundTrip) {
  REQUIRE_PYTHON_WITH("transformers");
  const fs::path dir = fs::path(reference_dir()) / "llama";
  const std::string imported = attnlab::testing::scratch_run_dir("hf_cli_import");
  auto run = run_attnlab("import hf_dir=" + (dir / "hf").string() + " out=" + imported);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_TRUE(fs::exists(fs::path(imported) / "model.safetensors"));
  EXPECT_TRUE(fs::exists(fs::path(imported) / kPretrainedSettingsFile));

  // The imported model evaluates before any fine-tuning: its own weights, on a dataset and with
  // a tokenizer chosen on the command line (the folder has no tokenizer of its own).
  run = run_attnlab("eval run_dir=" + imported +
                    " tokenizer=byte data.seq_len=32 data.batch_size=2 data.max_documents=20"
                    " eval.batches=2 trainer.progress=none");
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("checkpoint: " + imported), std::string::npos) << run.output;

  // init_from=<import folder> sets the architecture (d_model 64 over experiment=tiny's) and
  // trains; the byte tokenizer's ids fit the 320-row vocabulary (the folder has no tokenizer, so
  // the choice is the user's: without tokenizer= the run stops, see the test below).
  const std::string run_dir = attnlab::testing::scratch_run_dir("hf_cli_finetune");
  run = run_attnlab("train experiment=tiny tokenizer=byte init_strict=true init_from=" + imported +
                    " trainer.max_steps=4 trainer.eval_every=4 trainer.checkpoint_every=4 "
                    "data.batch_size=2 trainer.progress=plain run.dir=" +
                    run_dir);
  ASSERT_EQ(run.code, 0) << run.output;
  const YAML::Node trained = YAML::LoadFile(run_dir + "/config.yaml");
  EXPECT_EQ(trained["model"]["d_model"].as<int>(), 64);
  EXPECT_EQ(trained["model"]["mlp"].as<std::string>(), "swiglu");
  EXPECT_EQ(trained["model"]["n_kv_heads"].as<int>(), 2);

  // The same straight from the Hugging Face folder.
  const std::string direct_dir = attnlab::testing::scratch_run_dir("hf_cli_direct");
  run = run_attnlab("train experiment=tiny tokenizer=byte init_from=hf:" + (dir / "hf").string() +
                    " init_strict=true trainer.max_steps=2 trainer.eval_every=2 "
                    "trainer.checkpoint_every=2 data.batch_size=2 trainer.progress=plain run.dir=" +
                    direct_dir);
  ASSERT_EQ(run.code, 0) << run.output;

  // Export the fine-tuned run; transformers' logits equal attnlab's for the run's weights.
  const std::string exported = attnlab::testing::scratch_run_dir("hf_cli_export");
  run = run_attnlab("export format=hf dtype=float32 run_dir=" + run_dir + " out=" + exported);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("as llama"), std::string::npos) << run.output;
  YAML::Node config = attnlab::testing::compose_shipped({});
  config = YAML::LoadFile(run_dir + "/config.yaml");
  Gpt model = build_model(config, 320);
  load_state_dict(*model, read_weights(run_dir), /*strict=*/true);
  const std::string ids_file = exported + "_ids.safetensors";
  const torch::Tensor ids = torch::arange(0, 40, torch::kInt64).reshape({2, 20}) * 7 % 300;
  write_safetensors(ids_file, {{"ids", ids}});
  const std::string logits_file = exported + "_logits.safetensors";
  std::string output;
  ASSERT_EQ(run_python("'" + script() + "' logits '" + exported + "' '" + ids_file + "' '" +
                           logits_file + "'",
                       &output),
            0)
      << output;
  SafetensorsFile hf_logits(logits_file);
  EXPECT_LE(relative_error(logits_of(model, ids, torch::kFloat64), hf_logits.tensor("logits64")),
            1e-6);

  // The exported folder names the run's built-in tokenizer (it has no tokenizer.json), so it
  // imports back and fine-tunes with no tokenizer= on the command line.
  const std::string reimported = attnlab::testing::scratch_run_dir("hf_cli_reimport");
  run = run_attnlab("import hf_dir=" + exported + " out=" + reimported);
  ASSERT_EQ(run.code, 0) << run.output;
  for (const std::string from : {reimported, "hf:" + exported}) {
    run = run_attnlab("train --dry-run experiment=tiny init_from=" + from +
                      " run.dir=" + attnlab::testing::scratch_run_dir("hf_cli_reimport_run"));
    EXPECT_EQ(run.code, 0) << from << "\n" << run.output;
    EXPECT_NE(run.output.find("name: byte"), std::string::npos) << run.output;
  }
}

TEST(HfCli, AFolderWithATokenizerTrainsWithItAndExportsIt) {
  REQUIRE_PYTHON_WITH("transformers");
  // The GPT-2 case carries a byte-level BPE tokenizer.json of 320 ids; tokenizer=hf appends MASK,
  // so the model grows one vocabulary row (the mean embedding) to 321.
  const fs::path folder = fs::path(reference_dir()) / "gpt2" / "hf";
  const std::string run_dir = attnlab::testing::scratch_run_dir("hf_cli_tokenizer");
  auto run = run_attnlab("train experiment=tiny init_from=hf:" + folder.string() +
                         " trainer.max_steps=3 trainer.eval_every=3 trainer.checkpoint_every=3 "
                         "data.batch_size=2 trainer.progress=plain run.dir=" +
                         run_dir);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("1 vocabulary rows added"), std::string::npos) << run.output;
  const YAML::Node trained = YAML::LoadFile(run_dir + "/config.yaml");
  EXPECT_EQ(trained["tokenizer"]["name"].as<std::string>(), "hf");
  EXPECT_EQ(trained["tokenizer"]["path"].as<std::string>(), folder.string());
  EXPECT_EQ(trained["model"]["positions"].as<std::string>(), "learned");
  // A user's tokenizer choice wins over the folder's.
  const std::string byte_dir = attnlab::testing::scratch_run_dir("hf_cli_tokenizer_byte");
  run =
      run_attnlab("train --dry-run experiment=tiny tokenizer=byte init_from=hf:" + folder.string() +
                  " run.dir=" + byte_dir);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("name: byte"), std::string::npos) << run.output;

  const std::string exported = attnlab::testing::scratch_run_dir("hf_cli_tokenizer_export");
  run = run_attnlab("export format=hf dtype=bfloat16 run_dir=" + run_dir + " out=" + exported);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("as gpt2"), std::string::npos) << run.output;
  EXPECT_TRUE(fs::exists(fs::path(exported) / "tokenizer.json"));
  EXPECT_TRUE(fs::exists(fs::path(exported) / "tokenizer_config.json"));
  std::string output;
  ASSERT_EQ(
      run_python(
          "-c \"from transformers import AutoModelForCausalLM, AutoTokenizer; "
          "m = AutoModelForCausalLM.from_pretrained('" +
              exported + "'); t = AutoTokenizer.from_pretrained('" + exported +
              "'); print(m.config.vocab_size, m.dtype, len(t('Call me Ishmael')['input_ids']))\"",
          &output),
      0)
      << output;
  EXPECT_NE(output.find("321 torch.bfloat16"), std::string::npos) << output;
}

// A GPT-2 folder without tokenizer files trained with the default byte tokenizer on its 50257-row
// embedding, and said nothing (config: tokenizer.name byte). Without a tokenizer in the folder or
// on the command line, train, prepare and config stop with one line listing the choices that fit.
TEST(HfCli, AFolderWithoutATokenizerNeedsTheUsersChoice) {
  const std::string folder = attnlab::testing::scratch_run_dir("hf_no_tokenizer");
  fs::create_directories(folder);
  std::ofstream(fs::path(folder) / "config.json")
      << R"({"model_type": "gpt2", "n_embd": 32, "n_head": 2, "n_layer": 2, "n_positions": 64,
             "vocab_size": 50257})";
  const std::string run_dir = attnlab::testing::scratch_run_dir("hf_no_tokenizer_run");
  for (const std::string command : {"train --dry-run", "prepare", "config"}) {
    auto run =
        run_attnlab(command + " experiment=tiny init_from=hf:" + folder + " run.dir=" + run_dir);
    EXPECT_EQ(run.code, 2) << command << "\n" << run.output;
    EXPECT_NE(run.output.find("has no tokenizer.json"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("50257 vocabulary rows"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("tokenizer=gpt2"), std::string::npos) << run.output;
    EXPECT_EQ(run.output.find("tokenizer=byte"), std::string::npos) << run.output;
  }
  // A choice on the command line is the user's, even one that does not fit.
  auto run = run_attnlab("train --dry-run experiment=tiny tokenizer=byte init_from=hf:" + folder +
                         " run.dir=" + run_dir);
  EXPECT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("name: byte"), std::string::npos) << run.output;
  // A byte-sized vocabulary gets tokenizer=byte among the choices.
  std::ofstream(fs::path(folder) / "config.json")
      << R"({"model_type": "gpt2", "n_embd": 32, "n_head": 2, "n_layer": 2, "n_positions": 64,
             "vocab_size": 260})";
  run = run_attnlab("config experiment=tiny init_from=hf:" + folder);
  EXPECT_EQ(run.code, 2) << run.output;
  EXPECT_NE(run.output.find("tokenizer=byte"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("tokenizer=gpt2"), std::string::npos) << run.output;
}

// Copies a reference folder into a scratch folder a test can damage.
std::string damaged_copy(const std::string& name, const std::string& case_name) {
  const std::string dir = attnlab::testing::scratch_run_dir(name);
  fs::copy(fs::path(reference_dir()) / case_name / "hf", dir, fs::copy_options::recursive);
  return dir;
}

void expect_clean_failure(const std::string& args, const std::string& needle,
                          const std::string& out) {
  auto run = run_attnlab(args);
  EXPECT_EQ(run.code, 2) << run.output;
  EXPECT_NE(run.output.find(needle), std::string::npos) << run.output;
  // One line: the error, nothing else (no backtrace).
  EXPECT_LE(std::count(run.output.begin(), run.output.end(), '\n'), 1) << run.output;
  EXPECT_FALSE(fs::exists(out)) << "left " << out;
  for (const auto& entry : fs::directory_iterator(fs::path(out).parent_path()))
    EXPECT_EQ(entry.path().filename().string().find(".partial-"), std::string::npos)
        << entry.path();
}

TEST(HfCli, BadFoldersAndFilesFailWithOneLineAndWriteNothing) {
  REQUIRE_PYTHON_WITH("transformers");
  const std::string out = attnlab::testing::scratch_run_dir("hf_bad_out");
  const std::string empty = attnlab::testing::scratch_run_dir("hf_bad_empty");
  fs::create_directories(empty);
  expect_clean_failure("import hf_dir=" + empty + " out=" + out, "has no config.json", out);
  expect_clean_failure("import hf_dir=/nonexistent/x out=" + out, "does not exist", out);

  std::string dir = damaged_copy("hf_bad_type", "llama");
  {
    nlohmann::json config = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
    config["model_type"] = "falcon";
    std::ofstream(dir + "/config.json") << config.dump();
  }
  expect_clean_failure("import hf_dir=" + dir + " out=" + out,
                       "model_type 'falcon' is not supported", out);

  dir = damaged_copy("hf_bad_rope", "llama");
  {
    nlohmann::json config = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
    config["rope_parameters"]["rope_type"] = "yarn";
    std::ofstream(dir + "/config.json") << config.dump();
  }
  expect_clean_failure("import hf_dir=" + dir + " out=" + out, "rope_parameters.rope_type", out);

  dir = damaged_copy("hf_bad_json", "gpt2");
  std::ofstream(dir + "/config.json") << "{\"model_type\": \"gpt2\", ";
  expect_clean_failure("import hf_dir=" + dir + " out=" + out, "malformed JSON", out);

  // A tensor of the wrong shape: one line naming it, the full list in a file beside `out`.
  dir = damaged_copy("hf_bad_shape", "gpt2");
  {
    SafetensorsFile original(dir + "/model.safetensors");
    NamedTensorList tensors;
    for (const auto& name : original.names()) {
      torch::Tensor t = original.tensor(name).clone();
      if (name == "transformer.h.1.mlp.c_fc.weight") t = torch::zeros({64, 200});
      tensors.emplace_back(name, t);
    }
    write_safetensors(dir + "/model.safetensors", tensors);
  }
  expect_clean_failure("import hf_dir=" + dir + " out=" + out, "blocks.1.mlp.fc_in.weight", out);
  EXPECT_TRUE(fs::exists(out + ".import_errors.txt"));
  fs::remove(out + ".import_errors.txt");

  // Truncated data and a malformed header.
  dir = damaged_copy("hf_bad_truncated", "gpt2");
  fs::resize_file(dir + "/model.safetensors", fs::file_size(dir + "/model.safetensors") - 100);
  expect_clean_failure("import hf_dir=" + dir + " out=" + out, "truncated", out);
  dir = damaged_copy("hf_bad_header", "gpt2");
  {
    std::fstream file(dir + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(8);
    file.write("{\"x\": [", 7);
  }
  expect_clean_failure("import hf_dir=" + dir + " out=" + out, "model.safetensors", out);
  // The same damage reached through init_from=hf: stops training before a run dir is written.
  const std::string run_dir = attnlab::testing::scratch_run_dir("hf_bad_train");
  expect_clean_failure("train experiment=tiny init_from=hf:" + dir + " run.dir=" + run_dir,
                       "model.safetensors", run_dir);
  // An export over a folder that holds files.
  const std::string full = attnlab::testing::scratch_run_dir("hf_bad_full");
  fs::create_directories(full);
  std::ofstream(full + "/keep.txt") << "mine";
  auto run =
      run_attnlab("export format=hf run_dir=" + damaged_copy("hf_src", "llama") + " out=" + full);
  EXPECT_EQ(run.code, 2) << run.output;
  EXPECT_TRUE(fs::exists(full + "/keep.txt"));
}

TEST(Safetensors, RoundTripsEveryDtypeAndRejectsEveryDamagedHeader) {
  const std::string dir = attnlab::testing::scratch_run_dir("safetensors_unit");
  fs::create_directories(dir);
  NamedTensorList tensors = {
      {"f64", torch::randn({3, 2}, torch::kFloat64)},
      {"f32", torch::randn({5}, torch::kFloat32)},
      {"bf16", torch::randn({3}, torch::kFloat32).to(torch::kBFloat16)},  // odd size: misaligns
      {"f16", torch::randn({2, 2}, torch::kFloat32).to(torch::kFloat16)},
      {"i64", torch::arange(7, torch::kInt64)},
      {"u8", torch::arange(3, torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"empty", torch::zeros({0, 4})},
      {"transposed", torch::randn({3, 4}).t()}};
  const std::string path = dir + "/all.safetensors";
  write_safetensors(path, tensors);
  SafetensorsFile file(path);
  ASSERT_EQ(file.names().size(), tensors.size());
  for (const auto& [name, tensor] : tensors)
    EXPECT_TRUE(torch::equal(file.tensor(name), tensor)) << name;
  // A view survives the file object, and writing into it never reaches the file.
  torch::Tensor kept = SafetensorsFile(path).tensor("f64");
  kept.zero_();
  EXPECT_TRUE(torch::equal(SafetensorsFile(path).tensor("f64"), tensors[0].second));

  // Every single-byte change of the header and every truncation is an error or a valid file,
  // never a crash.
  const std::string bytes = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  int errors = 0;
  for (size_t pos = 0; pos < 8 + header; pos += 3) {
    std::string damaged = bytes;
    damaged[pos] = static_cast<char>(damaged[pos] ^ 0x5a);
    std::ofstream(dir + "/damaged.safetensors", std::ios::binary) << damaged;
    try {
      SafetensorsFile bad(dir + "/damaged.safetensors");
      for (const auto& name : bad.names()) bad.tensor(name).sum();
    } catch (const UserError& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find("damaged.safetensors"), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(errors, 20);
  for (size_t size : {size_t{0}, size_t{5}, size_t{8}, size_t{20}, bytes.size() - 1}) {
    std::ofstream(dir + "/short.safetensors", std::ios::binary) << bytes.substr(0, size);
    EXPECT_THROW(SafetensorsFile(dir + "/short.safetensors"), UserError) << size;
  }
}

TEST(PretrainedConfig, VocabularyRowsGrowToTheModelWithTheMeanEmbedding) {
  StateDict weights = {{"embed.weight", torch::tensor({{1.0, 2.0}, {3.0, 6.0}})}};
  StateDict model = {{"embed.weight", torch::zeros({4, 2})}};
  EXPECT_EQ(grow_vocabulary_rows(weights, model), 2);
  EXPECT_TRUE(torch::equal(weights.at("embed.weight"),
                           torch::tensor({{1.0, 2.0}, {3.0, 6.0}, {2.0, 4.0}, {2.0, 4.0}})));
  // Already the model's size: untouched.
  EXPECT_EQ(grow_vocabulary_rows(weights, model), 0);
}

// LoRA end to end against the real `peft`: fine-tune the random Llama straight from its Hugging
// Face folder with finetune=lora, export the adapters (format=peft) and load them with
// PeftModel.from_pretrained onto the original folder: the logits equal attnlab's for the run's
// checkpoint (reloaded with load_run, so the adapted model is rebuilt from config.yaml).
// format=hf of the run writes the merged model, which transformers loads with the same logits.
// A base without a transformers class (moh) cannot take a PEFT adapter: one line, exit 2.
TEST(HfPeft, LoraAdaptersLoadInPeftWithTheSameLogits) {
  REQUIRE_PYTHON_WITH("peft");
  const fs::path dir = fs::path(reference_dir()) / "llama";
  const std::string run_dir = attnlab::testing::scratch_run_dir("hf_peft_lora");
  auto run = run_attnlab("train experiment=tiny tokenizer=byte init_strict=true init_from=hf:" +
                         (dir / "hf").string() +
                         " finetune=lora finetune.r=4 finetune.alpha=8 optim.lr=0.01 "
                         "trainer.max_steps=4 trainer.eval_every=4 trainer.checkpoint_every=4 "
                         "data.batch_size=2 trainer.progress=plain run.dir=" +
                         run_dir);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("lora: r=4 alpha=8 on 12 modules (q_proj, k_proj, v_proj, out_proj)"),
            std::string::npos)
      << run.output;

  const std::string adapter = attnlab::testing::scratch_run_dir("hf_peft_adapter");
  run = run_attnlab("export format=peft run_dir=" + run_dir + " out=" + adapter);
  ASSERT_EQ(run.code, 0) << run.output;
  std::ifstream config_in(fs::path(adapter) / "adapter_config.json");
  const nlohmann::json adapter_config = nlohmann::json::parse(config_in);
  EXPECT_EQ(adapter_config["peft_type"], "LORA");
  EXPECT_EQ(adapter_config["r"], 4);
  EXPECT_EQ(adapter_config["target_modules"],
            (std::vector<std::string>{"k_proj", "o_proj", "q_proj", "v_proj"}));
  EXPECT_EQ(adapter_config["base_model_name_or_path"], fs::absolute(dir / "hf").string());
  SafetensorsFile adapter_file((fs::path(adapter) / "adapter_model.safetensors").string());
  const torch::Tensor b =
      adapter_file.tensor("base_model.model.model.layers.2.self_attn.o_proj.lora_B.weight");
  EXPECT_GT(b.abs().max().item<double>(), 0.0) << "training left lora_B at zero";

  LoadedRun loaded = load_run(run_dir, {});
  const torch::Tensor ids = torch::arange(0, 40, torch::kInt64).reshape({2, 20}) * 7 % 300;
  const std::string ids_file = adapter + "_ids.safetensors";
  write_safetensors(ids_file, {{"ids", ids}});
  const std::string logits_file = adapter + "_logits.safetensors";
  std::string output;
  ASSERT_EQ(run_python("'" + std::string(ATTNLAB_SOURCE_DIR) +
                           "/scripts/ref/peft_interop.py' logits '" + (dir / "hf").string() +
                           "' '" + adapter + "' '" + ids_file + "' '" + logits_file + "'",
                       &output),
            0)
      << output;
  EXPECT_NE(output.find("\"modules\": 12"), std::string::npos) << output;
  SafetensorsFile peft_logits(logits_file);
  const torch::Tensor ours32 = logits_of(loaded.model, ids, torch::kFloat32);
  const double diff32 = (ours32 - peft_logits.tensor("logits32")).abs().max().item<double>();
  const torch::Tensor ours64 = logits_of(loaded.model, ids, torch::kFloat64);
  const double diff64 = (ours64 - peft_logits.tensor("logits64")).abs().max().item<double>();
  std::cout << "peft logits: max |attnlab - peft| float32 " << diff32 << ", float64 " << diff64
            << " (logits up to " << ours64.abs().max().item<double>() << ")\n";
  EXPECT_LE(diff32, 1e-4);
  // The adapters change the logits far more than the two implementations differ.
  const size_t effect = output.find("\"adapter_effect\": ");
  ASSERT_NE(effect, std::string::npos) << output;
  EXPECT_GT(std::stod(output.substr(effect + 18)), 1e3 * diff32) << output;
  EXPECT_LE(diff64, 1e-5);  // transformers' RoPE angles are float32 even in a float64 model

  // format=hf: the merged model.
  const std::string merged = attnlab::testing::scratch_run_dir("hf_peft_merged");
  run = run_attnlab("export format=hf run_dir=" + run_dir + " out=" + merged);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("as llama"), std::string::npos) << run.output;
  const std::string merged_logits = merged + "_logits.safetensors";
  ASSERT_EQ(run_python("'" + script() + "' logits '" + merged + "' '" + ids_file + "' '" +
                           merged_logits + "'",
                       &output),
            0)
      << output;
  SafetensorsFile hf_logits(merged_logits);
  const double merged_diff = (ours64 - hf_logits.tensor("logits64")).abs().max().item<double>();
  std::cout << "merged format=hf logits: max |attnlab - transformers| float64 " << merged_diff
            << "\n";
  EXPECT_LE(merged_diff, 1e-4);

  // moh has no transformers class: format=peft refuses in one line.
  const std::string moh_dir = attnlab::testing::scratch_run_dir("hf_peft_moh");
  run = run_attnlab(
      "train experiment=tiny tokenizer=byte attention=moh finetune=lora "
      "finetune.target=[fc_in,fc_out] trainer.max_steps=1 trainer.eval_every=0 "
      "trainer.checkpoint_every=1 data.batch_size=2 trainer.progress=none run.dir=" +
      moh_dir);
  ASSERT_EQ(run.code, 0) << run.output;
  const std::string moh_out = attnlab::testing::scratch_run_dir("hf_peft_moh_out");
  run = run_attnlab("export format=peft run_dir=" + moh_dir + " out=" + moh_out);
  EXPECT_EQ(run.code, 2) << run.output;
  EXPECT_NE(run.output.find("cannot be expressed in PEFT's format"), std::string::npos)
      << run.output;
  EXPECT_FALSE(fs::exists(moh_out) && !fs::is_empty(moh_out));
}

}  // namespace
}  // namespace attnlab
