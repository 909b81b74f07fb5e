// See evaluator.h.
#include "trainer/evaluator.h"

#include <cmath>

#include "common/progress_meter.h"
#include "trainer/run_setup.h"

namespace attnlab {

double nll_of(const LossResult& result) {
  for (const char* key : {"nll", "loss/cross_entropy"}) {
    auto it = result.terms.find(key);
    if (it != result.terms.end()) return it->second.item<double>();
  }
  return result.total.item<double>();
}

EvalResult evaluate(GptImpl& model, ObjectiveImpl& objective, const LossSet& losses,
                    const ObjectiveContext& context, const std::vector<Batch>& batches,
                    DistributedContext& dist, const torch::Device& device, double bytes_per_token,
                    ProgressMeter* progress) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  ObjectiveContext eval_context = context;
  eval_context.generator = at::detail::createCPUGenerator(/*seed=*/20240229);
  double loss_sum = 0.0, count = 0.0;
  for (size_t i = dist.rank(); i < batches.size(); i += dist.world_size()) {
    Batch batch = batch_to_device(batches[i], device);
    loss_sum += nll_of(objective.compute(model, batch, losses, eval_context, /*training=*/false));
    count += 1;
    if (progress) progress->add(1);
  }
  if (was_training) model.train();
  EvalResult result;
  loss_sum = dist.allreduce_sum(loss_sum);
  count = dist.allreduce_sum(count);
  result.batches = static_cast<int64_t>(count);
  result.loss = count > 0 ? loss_sum / count : std::nan("");
  result.perplexity = std::exp(result.loss);
  result.bits_per_byte =
      bytes_per_token > 0 ? result.loss / std::log(2.0) / bytes_per_token : std::nan("");
  return result;
}

EvalRow ObjectiveImpl::evaluation_row(const EvalResult& result, int64_t /*seq_len*/) const {
  return {{"val_loss", result.loss},
          {"val_perplexity", result.perplexity},
          {"val_bits_per_byte", result.bits_per_byte}};
}

std::string ObjectiveImpl::evaluation_title(int64_t /*t_samples*/) const { return ""; }

}  // namespace attnlab
