// CLI smoke tests: run the built `attnlab` binary for `config`, `--help`, `--version`, sweeps and
// the error paths (exit code 2, one `error:` line, no stack trace), including the front end /
// runtime split (help needs no LibTorch) and CUDA devices that do not exist.
#include <sys/wait.h>
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>

#include "tests/support/config_test_util.h"

namespace attnlab::config {
namespace {

struct Result {
  int exit_code;
  std::string output;  // stdout and stderr
};

// `assignments`: extra NAME=VALUE environment settings for this run.
Result run_cli(const std::string& args, const std::string& assignments = "") {
  std::string command = std::string("cd '") + ATTNLAB_BINARY_DIR +
                        "' && env -u ATTNLAB_CONFIG_DIR -u ATTNLAB_CONFIG_PATH " + assignments +
                        " ./attnlab " + args + " 2>&1";
  Result result{-1, ""};
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(std::string(ATTNLAB_BINARY_DIR) + "/attnlab"))
      GTEST_SKIP() << "attnlab binary not built in " << ATTNLAB_BINARY_DIR;
  }
  const std::string dir_ = " --config-dir '" + testing::source_configs() + "' ";
};

TEST_F(Cli, ConfigPrintsComposedYaml) {
  Result r = run_cli("config" + dir_ + "model.d_model=64 attention=mha");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("d_model: 64"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dir: runs/${name}/${now:%Y-%m-%d_%H-%M-%S}"), std::string::npos);
  YAML::Node parsed = YAML::Load(r.output);
  EXPECT_EQ(parsed["optim"]["betas"][1].as<double>(), 0.95);
  Result resolved = run_cli("config --resolve" + dir_ + "name=cli");
  EXPECT_EQ(resolved.exit_code, 0) << resolved.output;
  EXPECT_NE(resolved.output.find("dir: runs/cli/"), std::string::npos) << resolved.output;
  EXPECT_EQ(resolved.output.find("${"), std::string::npos) << resolved.output;
}

TEST_F(Cli, HelpListsCommandsAndGroups) {
  Result r = run_cli("--help" + dir_);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (std::string fragment : {"usage: attnlab <command>", "config ", "--multirun", "attention:",
                               "mha", "scheduler:", "warmup_cosine", "experiment:", "tiny"})
    EXPECT_NE(r.output.find(fragment), std::string::npos) << fragment << "\n" << r.output;
  Result command = run_cli("config --help");
  EXPECT_EQ(command.exit_code, 0);
  EXPECT_NE(command.output.find("attnlab config: print the composed config"), std::string::npos)
      << command.output;
}

// `attnlab <command> --help` lists the command's own keys with their defaults; an unknown
// command gets the closest name.
TEST_F(Cli, CommandHelpListsItsKeysAndUnknownCommandsGetASuggestion) {
  Result sample = run_cli("sample --help");
  EXPECT_EQ(sample.exit_code, 0) << sample.output;
  for (std::string fragment :
       {"prompt=", "max_new_tokens=", "default 200", "top_k=", "checkpoint=WHICH", "default best"})
    EXPECT_NE(sample.output.find(fragment), std::string::npos) << fragment << "\n" << sample.output;
  Result eval = run_cli("eval --help");
  EXPECT_NE(eval.output.find("eval.seq_lens="), std::string::npos) << eval.output;
  Result export_help = run_cli("export --help");
  EXPECT_NE(export_help.output.find("out=PATH"), std::string::npos) << export_help.output;
  Result typo = run_cli("evl run_dir=x");
  EXPECT_EQ(typo.exit_code, 2) << typo.output;
  EXPECT_NE(typo.output.find("unknown command 'evl' (did you mean eval?)"), std::string::npos)
      << typo.output;
}

TEST_F(Cli, MultirunListsJobs) {
  Result r = run_cli("config -m" + dir_ + "seed=1,2 'attention=glob(mha)'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("# 2 jobs"), std::string::npos) << r.output;
  YAML::Node jobs = YAML::Load(r.output);
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[1]["overrides"][0].as<std::string>(), "seed=2");
  EXPECT_EQ(jobs[1]["dir"].as<std::string>().rfind("runs/multirun/", 0), 0u);
  EXPECT_EQ(jobs[1]["dir"].as<std::string>().substr(jobs[1]["dir"].as<std::string>().size() - 2),
            "/1");
}

TEST_F(Cli, UserErrorsExitTwoWithOneLine) {
  Result bad_key = run_cli("config" + dir_ + "model.d_modle=3");
  EXPECT_EQ(bad_key.exit_code, 2);
  EXPECT_EQ(bad_key.output.rfind("error: ", 0), 0u) << bad_key.output;
  EXPECT_NE(bad_key.output.find("did you mean model.d_model?"), std::string::npos);
  EXPECT_EQ(std::count(bad_key.output.begin(), bad_key.output.end(), '\n'), 1) << bad_key.output;
  EXPECT_EQ(bad_key.output.find("terminate"), std::string::npos);

  Result bad_type = run_cli("config" + dir_ + "model.d_model=abc");
  EXPECT_EQ(bad_type.exit_code, 2);
  EXPECT_NE(bad_type.output.find("expected int"), std::string::npos) << bad_type.output;

  Result unknown = run_cli("nosuchcommand");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("unknown command 'nosuchcommand'"), std::string::npos);
  EXPECT_NE(unknown.output.find("config"), std::string::npos) << unknown.output;

  Result bad_option = run_cli("config --bogus");
  EXPECT_EQ(bad_option.exit_code, 2) << bad_option.output;
  EXPECT_EQ(bad_option.output.rfind("error: ", 0), 0u) << bad_option.output;

  testing::TempDir d;
  d.write("config.yaml", "a: [1,\n");
  Result syntax = run_cli("config --config-dir '" + d.path() + "'");
  EXPECT_EQ(syntax.exit_code, 2);
  EXPECT_NE(syntax.output.find("config.yaml:"), std::string::npos) << syntax.output;
  EXPECT_NE(syntax.output.find("YAML syntax error"), std::string::npos) << syntax.output;
}

// The front end answers help and usage errors itself; the runtime library (LibTorch) is loaded
// only to run a command. With the runtime path pointing nowhere, help still works and a command
// fails with one clear line.
TEST_F(Cli, HelpNeedsNoRuntimeAndAMissingRuntimeIsOneLine) {
  const std::string nowhere = "ATTNLAB_RUNTIME=/nonexistent/x.so";
  Result help = run_cli("--help" + dir_, nowhere);
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find("commands:"), std::string::npos) << help.output;
  Result train_help = run_cli("train --help", nowhere);
  EXPECT_EQ(train_help.exit_code, 0) << train_help.output;
  Result unknown = run_cli("nosuchcommand", nowhere);
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  Result command = run_cli("config" + dir_, nowhere);
  EXPECT_EQ(command.exit_code, 1) << command.output;
  EXPECT_EQ(command.output.rfind("error: cannot load the attnlab runtime '/nonexistent/x.so'", 0),
            0u)
      << command.output;
}

TEST_F(Cli, VersionReportsLibTorchAndCuda) {
  Result version = run_cli("--version");
  EXPECT_EQ(version.exit_code, 0) << version.output;
  EXPECT_NE(version.output.find("attnlab "), std::string::npos) << version.output;
  EXPECT_NE(
      version.output.find(std::string("LibTorch ") + TORCH_VERSION + " (CUDA build, CUDA 13.0)"),
      std::string::npos)
      << version.output;
  const std::string available = torch::cuda::is_available() ? "yes" : "no";
  EXPECT_NE(version.output.find("CUDA available: " + available), std::string::npos)
      << version.output;
}

// The front end sets OMP_WAIT_POLICY=passive before LibTorch loads, unless the user chose a
// policy or a spin count (common/thread_environment.h).
TEST_F(Cli, OpenMpWaitsPassivelyUnlessTheUserChooses) {
  Result plain = run_cli("--version", "-u OMP_WAIT_POLICY -u GOMP_SPINCOUNT");
  EXPECT_NE(plain.output.find("OMP_WAIT_POLICY=passive"), std::string::npos) << plain.output;
  Result spin = run_cli("--version", "-u OMP_WAIT_POLICY GOMP_SPINCOUNT=300000");
  EXPECT_NE(spin.output.find("OMP_WAIT_POLICY=(unset), GOMP_SPINCOUNT=300000"), std::string::npos)
      << spin.output;
  Result active = run_cli("--version", "-u GOMP_SPINCOUNT OMP_WAIT_POLICY=active");
  EXPECT_NE(active.output.find("OMP_WAIT_POLICY=active"), std::string::npos) << active.output;
}

TEST_F(Cli, CudaDeviceThatDoesNotExistIsAUserError) {
  testing::TempDir d;
  const std::string run = " trainer.max_steps=1 run.dir='" + d.path() + "/run'";
  const int64_t gpus = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  Result out_of_range = run_cli("train trainer.device=cuda:99" + run + dir_);
  EXPECT_EQ(out_of_range.exit_code, 2) << out_of_range.output;
  EXPECT_EQ(out_of_range.output.rfind("error: trainer.device=cuda:99: ", 0), 0u)
      << out_of_range.output;
  if (gpus == 0) {
    Result cuda = run_cli("train trainer.device=cuda" + run + dir_);
    EXPECT_EQ(cuda.exit_code, 2) << cuda.output;
    EXPECT_NE(cuda.output.find("error: trainer.device=cuda: no CUDA GPU is visible"),
              std::string::npos)
        << cuda.output;
  } else {
    EXPECT_NE(out_of_range.output.find("CUDA device index 99 does not exist"), std::string::npos)
        << out_of_range.output;
  }
  Result meta = run_cli("train trainer.device=meta" + run + dir_);
  EXPECT_EQ(meta.exit_code, 2) << meta.output;
  EXPECT_NE(meta.output.find("trainer.device: 'meta' is not supported"), std::string::npos)
      << meta.output;
}

}  // namespace
}  // namespace attnlab::config
