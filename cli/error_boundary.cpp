// The commands' error boundary (see error_boundary.h).
#include "cli/error_boundary.h"

#include <cxxabi.h>
#include <torch/torch.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <new>
#include <typeinfo>

#include "common/error.h"
#include "common/error_log.h"

namespace attnlab {

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// The demangled type of the exception being handled ("std::bad_alloc").
std::string current_exception_type() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  if (type == nullptr) return "unknown";
  int status = 0;
  char* name = abi::__cxa_demangle(type->name(), nullptr, nullptr, &status);
  std::string out = (status == 0 && name != nullptr) ? name : type->name();
  std::free(name);
  return out;
}

std::string command_line(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc && argv != nullptr; ++i) out += (i ? " " : "") + std::string(argv[i]);
  return out;
}

int saved_argc = 0;
char** saved_argv = nullptr;

// Prints the one line and writes the full report to the run directory's log; returns `code`.
int report(int code, const std::string& message, const std::string& details) {
  std::string line = code == kUserErrorExitCode ? message : first_line(message);
  if (line.empty()) line = "unknown error (" + current_exception_type() + ")";
  const std::string log = append_error_log(
      "command: " + command_line(saved_argc, saved_argv) + "\nexit code: " + std::to_string(code) +
      "\nexception: " + current_exception_type() + "\n" + details);
  if (code != kUserErrorExitCode && !log.empty()) line += " (full report in " + log + ")";
  std::cerr << "error: " << line << std::endl;
  return code;
}

// Maps the exception being handled to its report; call only inside a catch block.
int report_current_exception() {
  try {
    throw;
  } catch (const UserError& error) {
    return report(kUserErrorExitCode, error.what(), error.what());
  } catch (const YAML::Exception& error) {
    return report(kUserErrorExitCode, error.what(), error.what());
  } catch (const c10::Error& error) {
    return report(1, error.what_without_backtrace(), error.what());
  } catch (const std::bad_alloc& error) {
    return report(1, std::string("out of memory (") + error.what() + ")", error.what());
  } catch (const std::exception& error) {
    return report(1, error.what(), error.what());
  } catch (...) {
    return report(1, "unexpected exception of type " + current_exception_type(), "");
  }
}

// std::terminate while a command runs: the same report, exit code 1, no abort.
[[noreturn]] void on_terminate() {
  if (std::current_exception()) {
    try {
      std::rethrow_exception(std::current_exception());
    } catch (...) {
      std::_Exit(report_current_exception() == kUserErrorExitCode ? kUserErrorExitCode : 1);
    }
  }
  std::cerr << "error: internal error (std::terminate without an exception)" << std::endl;
  std::_Exit(1);
}

}  // namespace

int run_with_error_boundary(const std::function<int()>& command, int argc, char** argv) {
  saved_argc = argc;
  saved_argv = argv;
  const std::terminate_handler previous = std::set_terminate(on_terminate);
  int code = 1;
  try {
    code = command();
  } catch (...) {
    code = report_current_exception();
  }
  std::set_terminate(previous);
  return code;
}

}  // namespace attnlab
