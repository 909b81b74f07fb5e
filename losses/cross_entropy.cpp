// Implementation of the cross_entropy term (losses/cross_entropy.h).
#include "losses/cross_entropy.h"

#include "losses/targets.h"

namespace attnlab {

namespace {
// Half/bfloat16 logits are upcast: log_softmax over a large vocabulary loses too much precision.
torch::Tensor at_least_fp32(const torch::Tensor& x) {
  return x.scalar_type() == torch::kDouble ? x : x.to(torch::kFloat);
}
}  // namespace

torch::Tensor cross_entropy_mean(const torch::Tensor& logits, const torch::Tensor& targets,
                                 const CrossEntropyOptions& options) {
  namespace F = torch::nn::functional;
  // Sum then divide by the counted rows ourselves: the same for every PyTorch version's handling
  // of ignored rows under label smoothing, and 0 rather than NaN when nothing is counted.
  torch::Tensor sum = F::cross_entropy(at_least_fp32(logits), targets,
                                       F::CrossEntropyFuncOptions()
                                           .ignore_index(options.ignore_index)
                                           .label_smoothing(options.label_smoothing)
                                           .reduction(torch::kSum));
  torch::Tensor count = (targets != options.ignore_index).sum().clamp_min(1);
  return sum / count.to(sum.scalar_type());
}

CrossEntropyTerm::CrossEntropyTerm(const CrossEntropyTermOptions& options,
                                   const LossTermContext& context) {
  options_.ignore_index = options.ignore_index();
  options_.label_smoothing = options.label_smoothing();
  if (options_.label_smoothing < 0.0 || options_.label_smoothing > 1.0)
    context.fail("label_smoothing",
                 "expected a value in [0, 1], got " + std::to_string(options_.label_smoothing));
}

TapRequest CrossEntropyTerm::taps(int64_t) const {
  TapRequest request;
  request.logits = true;
  return request;
}

torch::Tensor CrossEntropyTerm::compute(const ModelOutput& output, const Batch& batch,
                                        std::map<std::string, torch::Tensor>&) const {
  PredictionTargets pt = prediction_targets(output, batch, options_.ignore_index, "cross_entropy");
  return cross_entropy_mean(pt.logits, pt.targets, options_);
}

}  // namespace attnlab
