// See step_runner.h.
#include "trainer/step_runner.h"

#include <cmath>
#include <limits>
#include <utility>

#include "trainer/autocast.h"
#include "trainer/run_setup.h"

namespace attnlab {

namespace {

// 0-d tensors (any device) as doubles, read back with one device-to-host copy.
std::map<std::string, double> read_scalars(const std::map<std::string, torch::Tensor>& tensors) {
  std::map<std::string, double> values;
  if (tensors.empty()) return values;
  std::vector<torch::Tensor> parts;
  for (const auto& [name, tensor] : tensors) parts.push_back(tensor.reshape({}));
  const auto host = torch::stack(parts).to(torch::kCPU, torch::kFloat64).contiguous();
  const double* data = host.data_ptr<double>();
  int64_t i = 0;
  for (const auto& [name, tensor] : tensors) values[name] = data[i++];
  return values;
}

// Logged losses are each rank's mean over its own rows; the mean over ranks is the loss of the
// global batch (every rank holds the same number of rows), comparable to a 1-process run.
void average_over_ranks(DistributedContext& dist, std::map<std::string, double>& values) {
  auto packed = torch::empty({static_cast<int64_t>(values.size())}, torch::kFloat64);
  int64_t i = 0;
  for (const auto& [name, value] : values) packed[i++] = value;  // same keys on every rank
  dist.allreduce_sum_(packed);
  i = 0;
  for (auto& [name, value] : values) value = packed[i++].item<double>() / dist.world_size();
}

StepOutcome non_finite(StepOutcome outcome, std::string fault, bool update_applied) {
  outcome.kind = StepOutcome::Kind::kNonFinite;
  outcome.fault = std::move(fault);
  outcome.update_applied = update_applied;
  return outcome;
}

}  // namespace

StepRunner::StepRunner(Task& task, torch::nn::Module& model, OptimizerSetup& optim,
                       GradientReducer& reducer, DistributedContext& dist, torch::Device device,
                       const LoopOptions& loop, DivergenceGuard& guard, GradEarlyStop& grades,
                       Say say)
    : task_(task),
      model_(model),
      optim_(optim),
      reducer_(reducer),
      dist_(dist),
      device_(device),
      loop_(loop),
      guard_(guard),
      grades_(grades),
      say_(std::move(say)) {}

// The micro-batches of one step. Loss terms stay on the device through the micro-steps and are
// read back once (one host sync however many terms and micro-steps), in float64.
void StepRunner::accumulate_gradients(StepOutcome& outcome) {
  const int64_t accum = loop_.grad_accum_steps();
  std::map<std::string, torch::Tensor> step_terms;
  auto add_term = [&](const std::string& name, const torch::Tensor& value) {
    auto term = value.detach().to(torch::kFloat64) / static_cast<double>(accum);
    auto it = step_terms.find(name);
    if (it == step_terms.end())
      step_terms.emplace(name, term);
    else
      it->second = it->second + term;
  };
  for (int64_t micro = 0; micro < accum; ++micro) {
    Batch batch = task_.next_batch();
    outcome.tokens += task_.tokens_in(batch) * dist_.world_size();
    outcome.examples += batch.input.size(0) * dist_.world_size();
    batch = batch_to_device(std::move(batch), device_);
    reducer_.begin_step(/*sync=*/micro == accum - 1);
    LossResult result;
    {
      AutocastGuard autocast(loop_.autocast_bf16(), device_);
      result = task_.training_loss(batch);
    }
    (result.total / static_cast<double>(accum)).backward();
    add_term("train/loss", result.total);
    for (auto& [name, value] : result.terms) add_term("train/" + name, value);
  }
  outcome.logged = read_scalars(step_terms);
  reducer_.finish();
  if (dist_.is_distributed()) average_over_ranks(dist_, outcome.logged);
}

StepOutcome StepRunner::run(int64_t step, double lr_factor, double lr_scale) {
  set_learning_rate(optim_, lr_factor, lr_scale);
  clear_gradients(optim_);
  StepOutcome outcome;
  accumulate_gradients(outcome);
  if (!optim_.trainable.empty() && optim_.trainable.front().grad().defined() &&
      guard_.take_injection(step))
    optim_.trainable.front().grad().view(-1)[0].fill_(std::numeric_limits<double>::quiet_NaN());

  // Before the update: losses, then gradients (before clipping mixes them).
  std::string fault = nonfinite_loss(outcome.logged);
  if (fault.empty()) {
    const std::string bad = first_nonfinite(named_gradients(model_));
    if (!bad.empty()) fault = "the gradient of '" + bad + "' is not finite";
  }
  if (!fault.empty()) return non_finite(std::move(outcome), fault, /*update_applied=*/false);

  // GradES: converged matrices lose their gradient before clipping and the update.
  const std::vector<std::string> newly_frozen = grades_.observe(step);
  if (!newly_frozen.empty()) {
    std::string names;
    for (size_t i = 0; i < newly_frozen.size() && i < 4; ++i)
      names += (i ? ", " : "") + newly_frozen[i];
    if (newly_frozen.size() > 4) names += ", ...";
    say_("GradES: step " + std::to_string(step) + " froze " + std::to_string(newly_frozen.size()) +
         " matrices (" + std::to_string(grades_.frozen_count()) + "/" +
         std::to_string(grades_.monitored_count()) + " frozen): " + names);
  }
  outcome.grad_norm = clip_gradients(optim_);
  if (!std::isfinite(outcome.grad_norm))
    return non_finite(std::move(outcome),
                      "the gradient norm is " + short_number(outcome.grad_norm) +
                          " (the gradients are finite; their norm overflows)",
                      /*update_applied=*/false);
  outcome.loss = outcome.logged["train/loss"];
  if (guard_.drop_spike(step, outcome.loss, outcome.grad_norm)) {
    outcome.kind = StepOutcome::Kind::kDropped;
    return outcome;
  }

  try {
    optim_.optimizer->step();
  } catch (const std::exception& error) {
    // e.g. optim.lr=1e38: the step size overflows float (c10::report_overflow throws a plain
    // std::runtime_error). Some parameters may be updated.
    const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
    const std::string what = c10_error ? c10_error->what_without_backtrace() : error.what();
    return non_finite(std::move(outcome),
                      "the optimizer update failed (" + what.substr(0, what.find('\n')) + ")",
                      /*update_applied=*/true);
  }
  const std::string bad = first_nonfinite(named_parameters_and_moments(model_, *optim_.optimizer));
  if (!bad.empty())
    return non_finite(std::move(outcome), "the update made '" + bad + "' non-finite",
                      /*update_applied=*/true);
  guard_.accept(outcome.loss, outcome.grad_norm);
  return outcome;
}

}  // namespace attnlab
