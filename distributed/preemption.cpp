// SIGUSR1 flag and Slurm self-requeue; see preemption.h.
#include "distributed/preemption.h"

#include <atomic>
#include <csignal>
#include <cstdlib>

namespace attnlab {

namespace {

// Lock-free atomics are async-signal-safe; the handler does nothing else.
std::atomic<bool> g_preempted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "signal flag must be lock-free");

extern "C" void on_preemption_signal(int) { g_preempted.store(true); }

}  // namespace

void install_preemption_handler(int signal_number) {
  if (signal_number == 0) signal_number = SIGUSR1;
  struct sigaction action {};
  action.sa_handler = on_preemption_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // don't make blocking reads/writes in the loop fail with EINTR
  sigaction(signal_number, &action, nullptr);
}

bool preemption_requested() { return g_preempted.load(); }
void clear_preemption() { g_preempted.store(false); }
void request_preemption() { g_preempted.store(true); }

bool requeue_slurm_job(std::string* message) {
  const char* job_id = std::getenv("SLURM_ARRAY_JOB_ID");
  const char* task_id = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* plain_id = std::getenv("SLURM_JOB_ID");
  if (plain_id == nullptr) {
    if (message) *message = "not running under Slurm (SLURM_JOB_ID unset); not requeued";
    return false;
  }
  // An array task is requeued by <array id>_<task id>; SLURM_JOB_ID also names it uniquely.
  std::string id = plain_id;
  if (job_id != nullptr && task_id != nullptr) id = std::string(job_id) + "_" + task_id;
  const std::string command = "scontrol requeue " + id;
  const int status = std::system(command.c_str());
  if (message)
    *message = command + (status == 0 ? "" : " failed (status " + std::to_string(status) + ")");
  return status == 0;
}

}  // namespace attnlab
