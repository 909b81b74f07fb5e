// GradientReducer: bucketed, overlapped gradient averaging for data parallelism (the C++ front end
// has no DDP; this follows c10d's Reducer design). Parameters are grouped into buckets of about
// `bucket_bytes` in reverse registration order — the order backward produces their gradients.
// A tensor hook per parameter copies each gradient into its bucket's flat buffer; when a bucket is
// full its non-blocking all-reduce (MPI_Iallreduce, gloo's, or NCCL's on its own CUDA stream with
// the bucket left on the GPU) starts while backward continues. finish() waits for the rest and
// writes the averaged gradients into .grad, so gradient clipping afterwards sees the global
// gradient.
//
// Usage per optimizer step (with `accum` micro-steps):
//   for (int micro = 0; micro < accum; ++micro) {
//     reducer.begin_step(/*sync=*/micro == accum - 1);  // no communication on earlier micro-steps
//     loss.backward();
//   }
//   reducer.finish();  // wait + average; then clip, optimizer.step(), zero_grad()
#pragma once

#include <torch/torch.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "distributed/collectives.h"
#include "distributed/distributed.h"

namespace attnlab {

struct ReducerStats {
  int64_t steps = 0;                 // synced steps finished
  int64_t allreduces = 0;            // bucket all-reduces launched (all steps)
  int64_t launched_in_backward = 0;  // of those, started from a hook while backward ran
  double exposed_comm_s = 0.0;       // total seconds spent inside finish() (waiting + copy-back)
  double last_exposed_comm_s = 0.0;  // the same for the most recent finish()
};

class GradientReducer {
 public:
  // Installs hooks on `module`'s trainable parameters. A single-process context makes the
  // reducer a no-op (hooks are not installed).
  GradientReducer(DistributedContext& context, torch::nn::Module& module, size_t bucket_bytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Call before each backward. sync=false (accumulation micro-step): gradients just accumulate
  // locally in .grad. sync=true: this backward's gradients (plus what .grad already holds) are
  // all-reduced as buckets fill.
  void begin_step(bool sync);
  // After a sync backward: launches buckets that did not fill (unused parameters contribute
  // zeros), waits for all, writes the rank-mean into every parameter's .grad. No-op otherwise.
  void finish();

  size_t num_buckets() const { return buckets_.size(); }
  const ReducerStats& stats() const { return stats_; }

 private:
  struct Slot {
    torch::Tensor param;
    size_t bucket = 0;
    int64_t offset = 0;  // element offset in the bucket buffer
    bool ready = false;  // gradient copied in during the current step
    unsigned hook = 0;   // register_hook's handle, for remove_hook
  };
  struct Bucket {
    torch::Tensor buffer;  // flat, same dtype/device as its parameters
    torch::Tensor host;    // the CPU memory the backend reads and writes (== buffer on CPU)
    std::vector<size_t> slots;
    size_t pending = 0;
    bool launched = false;
    std::unique_ptr<PendingOp> op;  // the all-reduce in flight
  };

  void on_gradient(size_t slot_index, const torch::Tensor& grad);
  void mark_ready_locked(size_t slot_index);
  void launch_ready_buckets_locked(bool from_hook);
  void launch_locked(Bucket& bucket, bool from_hook);
  bool may_communicate_here() const;

  DistributedContext& context_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;  // buckets start strictly in index order on every rank (MPI and gloo
                            // require the same collective order everywhere)
  bool syncing_ = false;
  std::thread::id owner_thread_;
  std::mutex mutex_;
  ReducerStats stats_;
};

}  // namespace attnlab
