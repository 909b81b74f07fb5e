// Bucketed, overlapped gradient all-reduce; see gradient_reducer.h for the design and usage.
#include "distributed/gradient_reducer.h"

#include <chrono>
#include <map>
#include <stdexcept>

namespace attnlab {

namespace {

// Reduction dtype for a parameter dtype: MPI has no half/bfloat16 sum, so those reduce in fp32
// (master weights are fp32 anyway; autocast keeps them so).
c10::ScalarType reduce_dtype(c10::ScalarType type) {
  return (type == torch::kFloat64) ? torch::kFloat64 : torch::kFloat32;
}

}  // namespace

GradientReducer::GradientReducer(DistributedContext& context, torch::nn::Module& module,
                                 size_t bucket_bytes)
    : context_(context), owner_thread_(std::this_thread::get_id()) {
  if (!context_.is_distributed()) return;
  if (bucket_bytes == 0) throw std::invalid_argument("GradientReducer: bucket_bytes must be > 0");

  std::vector<torch::Tensor> params;
  for (const auto& param : module.parameters(/*recurse=*/true))
    if (param.requires_grad()) params.push_back(param);
  // Reverse registration order approximates the order in which backward produces gradients
  // (last layer first), so early buckets fill — and start communicating — early.
  std::reverse(params.begin(), params.end());

  // Open bucket per (dtype, device): a bucket's buffer is one flat tensor.
  std::map<std::string, size_t> open;
  std::vector<int64_t> bucket_numel;
  for (const auto& param : params) {
    const auto dtype = reduce_dtype(param.scalar_type());
    const std::string key = std::string(c10::toString(dtype)) + "@" + param.device().str();
    const size_t element_bytes = c10::elementSize(dtype);
    auto it = open.find(key);
    if (it == open.end() ||
        static_cast<size_t>(bucket_numel[it->second] + param.numel()) * element_bytes >
                bucket_bytes &&
            bucket_numel[it->second] > 0) {
      buckets_.emplace_back();
      bucket_numel.push_back(0);
      buckets_.back().buffer = torch::empty({0}, param.options().dtype(dtype));
      open[key] = buckets_.size() - 1;
      it = open.find(key);
    }
    Slot slot;
    slot.param = param;
    slot.bucket = it->second;
    slot.offset = bucket_numel[it->second];
    bucket_numel[it->second] += param.numel();
    buckets_[it->second].slots.push_back(slots_.size());
    slots_.push_back(slot);
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    bucket.buffer = torch::zeros({bucket_numel[b]}, bucket.buffer.options());
    // Staged through host memory only when the backend reduces elsewhere (mpi/gloo with GPU
    // parameters); nccl reduces GPU buckets in place.
    const torch::Device comm_device = context_.collectives()->device();
    bucket.host =
        bucket.buffer.device() == comm_device
            ? bucket.buffer
            : torch::zeros({bucket_numel[b]}, bucket.buffer.options().device(comm_device));
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    // The hook sees this backward's gradient before AccumulateGrad adds it to .grad.
    slots_[i].hook =
        slots_[i].param.register_hook([this, i](torch::Tensor grad) { on_gradient(i, grad); });
  }
}

GradientReducer::~GradientReducer() {
  // Hooks hold `this`; drop them with the reducer (the module may outlive it).
  // An all-reduce still in flight completes in its op's destructor (MPI) or in gloo's threads
  // before the buffers it uses go away with the buckets.
  for (auto& slot : slots_) slot.param.remove_hook(slot.hook);
}

bool GradientReducer::may_communicate_here() const {
  return context_.thread_multiple() || std::this_thread::get_id() == owner_thread_;
}

void GradientReducer::begin_step(bool sync) {
  if (!context_.is_distributed()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (syncing_)
    throw std::logic_error("GradientReducer::begin_step: previous sync step was not finish()ed");
  syncing_ = sync;
  if (!sync) return;
  next_launch_ = 0;
  for (auto& slot : slots_) slot.ready = false;
  for (auto& bucket : buckets_) {
    bucket.pending = bucket.slots.size();
    bucket.launched = false;
  }
}

void GradientReducer::on_gradient(size_t slot_index, const torch::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!syncing_) return;  // accumulation micro-step: no communication
  Slot& slot = slots_[slot_index];
  if (slot.ready) {
    throw std::logic_error(
        "GradientReducer: a parameter received two gradients in one synced step; call backward "
        "once per begin_step()");
  }
  torch::NoGradGuard no_grad;
  Bucket& bucket = buckets_[slot.bucket];
  auto view = bucket.buffer.narrow(0, slot.offset, slot.param.numel()).view(slot.param.sizes());
  // The bucket must hold the full accumulated gradient: earlier micro-steps' .grad plus this one.
  const torch::Tensor& accumulated = slot.param.grad();
  if (accumulated.defined())
    torch::add_out(view, accumulated.to(view.scalar_type()), grad.to(view.scalar_type()));
  else
    view.copy_(grad);
  mark_ready_locked(slot_index);
  if (may_communicate_here()) {
    launch_ready_buckets_locked(/*from_hook=*/true);
    // Open MPI progresses non-blocking collectives only inside MPI calls: poke the ones in
    // flight (errors surface in finish()'s wait).
    for (auto& other : buckets_) {
      try {
        if (other.launched && other.op) other.op->test();
      } catch (const std::exception&) {
      }
    }
  }
}

void GradientReducer::mark_ready_locked(size_t slot_index) {
  Slot& slot = slots_[slot_index];
  slot.ready = true;
  --buckets_[slot.bucket].pending;
}

void GradientReducer::launch_ready_buckets_locked(bool from_hook) {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    launch_locked(buckets_[next_launch_], from_hook);
    ++next_launch_;
  }
}

void GradientReducer::launch_locked(Bucket& bucket, bool from_hook) {
  if (!bucket.host.is_same(bucket.buffer)) bucket.host.copy_(bucket.buffer);
  bucket.op = context_.collectives()->allreduce(bucket.host, ReduceOp::kSum);
  bucket.launched = true;
  ++stats_.allreduces;
  if (from_hook) ++stats_.launched_in_backward;
}

void GradientReducer::finish() {
  if (!context_.is_distributed()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!syncing_) return;
  const auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  // Parameters that got no gradient this step (unused in the graph) contribute what .grad holds
  // from earlier micro-steps, else zeros — every rank must still launch every bucket.
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (slot.ready) continue;
    Bucket& bucket = buckets_[slot.bucket];
    auto view = bucket.buffer.narrow(0, slot.offset, slot.param.numel()).view(slot.param.sizes());
    if (slot.param.grad().defined())
      view.copy_(slot.param.grad());
    else
      view.zero_();
    mark_ready_locked(i);
  }
  launch_ready_buckets_locked(/*from_hook=*/false);

  const double scale = 1.0 / context_.world_size();
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    context_.wait_or_abort(*bucket.op, "gradient all-reduce (bucket " + std::to_string(b) + " of " +
                                           std::to_string(buckets_.size()) + ")");
    bucket.op.reset();
    if (!bucket.host.is_same(bucket.buffer)) bucket.buffer.copy_(bucket.host);
    bucket.buffer.mul_(scale);
    for (size_t slot_index : bucket.slots) {
      Slot& slot = slots_[slot_index];
      auto view = bucket.buffer.narrow(0, slot.offset, slot.param.numel()).view(slot.param.sizes());
      if (!slot.param.grad().defined()) slot.param.mutable_grad() = torch::zeros_like(slot.param);
      slot.param.mutable_grad().copy_(view);
    }
  }
  syncing_ = false;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats_.last_exposed_comm_s = seconds;
  stats_.exposed_comm_s += seconds;
  ++stats_.steps;
}

}  // namespace attnlab
