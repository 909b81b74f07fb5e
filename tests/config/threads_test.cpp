// trainer.threads is clamped to the cores this process may use, with a one-line warning:
// trainer.threads=100000 used to ask OpenMP for 100,000 threads and stall the machine.
#include <gtest/gtest.h>
#include <sched.h>
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <string>

#include "config/yaml_io.h"
#include "trainer/run_setup.h"

namespace attnlab {
namespace {

// The cores of this process's CPU affinity, counted here independently of run_setup.
int cores_of_this_process() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  EXPECT_EQ(sched_getaffinity(0, sizeof(cpus), &cpus), 0);
  return CPU_COUNT(&cpus);
}

YAML::Node with_threads(const std::string& threads) {
  return config::parse_yaml("trainer: {threads: " + threads + "}\n", "test");
}

TEST(Threads, MoreThreadsThanCoresAreClampedWithOneWarning) {
  const int cores = cores_of_this_process();
  const int before = torch::get_num_threads();
  ::testing::internal::CaptureStderr();
  const int used = configure_threads(with_threads("100000"));
  const std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(used, cores);
  EXPECT_EQ(torch::get_num_threads(), cores);
  EXPECT_EQ(warning, "warning: trainer.threads=100000 is more than the " + std::to_string(cores) +
                         " cores available; using " + std::to_string(cores) + "\n");
  // Counts within the machine are kept as asked, silently.
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(configure_threads(with_threads("1")), 1);
  EXPECT_EQ(configure_threads(with_threads("0")), cores);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  torch::set_num_threads(before);
}

}  // namespace
}  // namespace attnlab
