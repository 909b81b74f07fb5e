// The commands' error boundary (issue 17): every exception ends as one `error:` line and exit
// code 2 (bad input) or 1 (internal), never an abort; the full report goes to the run
// directory's error.log once the command has one.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <new>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/error_log.h"
#include "tests/trainer/trainer_test_util.h"
#include "cli/error_boundary.h"

namespace attnlab {
namespace {

using testing::TempDir;

struct Outcome {
  int code = 0;
  std::string stderr_text;
};

Outcome run_boundary(const std::function<int()>& command) {
  static char program[] = "attnlab";
  static char name[] = "train";
  static char* argv[] = {program, name, nullptr};
  ::testing::internal::CaptureStderr();
  Outcome outcome;
  outcome.code = run_with_error_boundary(command, 2, argv);
  outcome.stderr_text = ::testing::internal::GetCapturedStderr();
  return outcome;
}

// Exactly one line, starting with "error: ".
void expect_one_error_line(const Outcome& outcome) {
  EXPECT_EQ(outcome.stderr_text.rfind("error: ", 0), 0u) << outcome.stderr_text;
  EXPECT_EQ(std::count(outcome.stderr_text.begin(), outcome.stderr_text.end(), '\n'), 1)
      << outcome.stderr_text;
}

TEST(IntegrityErrorBoundary, InputErrorsExitTwoWithTheirMessage) {
  set_error_log_directory("");
  Outcome user = run_boundary([]() -> int { throw UserError("model.dropout: expected [0, 1)"); });
  EXPECT_EQ(user.code, kUserErrorExitCode);
  EXPECT_EQ(user.stderr_text, "error: model.dropout: expected [0, 1)\n");
  Outcome yaml = run_boundary([]() -> int { return YAML::Load("a: [1, 2").size(); });
  EXPECT_EQ(yaml.code, kUserErrorExitCode);
  expect_one_error_line(yaml);
  EXPECT_EQ(run_boundary([] { return 0; }).code, 0);
}

TEST(IntegrityErrorBoundary, EveryOtherExceptionExitsOneWithOneLine) {
  set_error_log_directory("");
  Outcome torch_error = run_boundary([]() -> int {
    TORCH_CHECK(false, "an internal check failed");
    return 0;
  });
  EXPECT_EQ(torch_error.code, 1);
  expect_one_error_line(torch_error);
  EXPECT_NE(torch_error.stderr_text.find("an internal check failed"), std::string::npos);

  Outcome index_error = run_boundary([]() -> int {
    return static_cast<int>(torch::embedding(torch::zeros({3, 2}), torch::tensor({7})).numel());
  });
  EXPECT_EQ(index_error.code, 1);
  expect_one_error_line(index_error);

  Outcome oom = run_boundary([]() -> int { throw std::bad_alloc(); });
  EXPECT_EQ(oom.code, 1);
  expect_one_error_line(oom);
  EXPECT_NE(oom.stderr_text.find("out of memory"), std::string::npos) << oom.stderr_text;

  Outcome other = run_boundary([]() -> int { throw 42; });
  EXPECT_EQ(other.code, 1);
  expect_one_error_line(other);
  EXPECT_NE(other.stderr_text.find("int"), std::string::npos) << other.stderr_text;
}

TEST(IntegrityErrorBoundary, FullReportGoesToTheRunDirectoryLog) {
  TempDir dir;
  set_error_log_directory(dir.str());
  Outcome outcome = run_boundary([]() -> int {
    TORCH_CHECK(false, "deep failure");
    return 0;
  });
  set_error_log_directory("");
  EXPECT_EQ(outcome.code, 1);
  expect_one_error_line(outcome);
  const std::string log_path = dir / kErrorLogName;
  EXPECT_NE(outcome.stderr_text.find(log_path), std::string::npos) << outcome.stderr_text;
  std::ifstream in(log_path);
  std::stringstream log;
  log << in.rdbuf();
  EXPECT_NE(log.str().find("command: attnlab train"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("exception: c10::Error"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("deep failure"), std::string::npos) << log.str();
}

TEST(IntegrityErrorBoundary, ExceptionEscapingAThreadExitsOneInsteadOfAborting) {
  // std::terminate inside the boundary: a child process, since the boundary then exits.
  EXPECT_EXIT(
      {
        set_error_log_directory("");
        run_with_error_boundary(
            [] {
              std::thread([] { throw std::runtime_error("worker failed"); }).join();
              return 0;
            },
            0, nullptr);
      },
      ::testing::ExitedWithCode(1), "error: worker failed");
}

}  // namespace
}  // namespace attnlab
