// Implementation of the decorrelation (sink) loss (losses/decorrelation.h).
#include "losses/decorrelation.h"

#include "losses/targets.h"

namespace attnlab {

namespace {
torch::Tensor at_least_fp32(const torch::Tensor& x) {
  return x.scalar_type() == torch::kDouble ? x : x.to(torch::kFloat);
}

int64_t resolve_prefix(int64_t prefix_length, int64_t T) {
  return prefix_length < 0 ? T - 1 : prefix_length;
}
}  // namespace

torch::Tensor bos_cosines(const torch::Tensor& hidden, int64_t prefix_length) {
  TORCH_CHECK(hidden.dim() == 3, "decorrelation: expected hidden [B, T, C], got ", hidden.sizes());
  const int64_t P = resolve_prefix(prefix_length, hidden.size(1));
  TORCH_CHECK(P <= hidden.size(1) - 1, "decorrelation: prefix_length ", P,
              " exceeds the tokens after BOS (", hidden.size(1) - 1, ")");
  namespace F = torch::nn::functional;
  torch::Tensor h = F::normalize(at_least_fp32(hidden.narrow(1, 0, P + 1)),
                                 F::NormalizeFuncOptions().dim(-1).eps(1e-12));
  // cos(h_0, h_s) for s = 1..P, as the reference's einsum of normalised vectors.
  return (h.narrow(1, 1, P) * h.narrow(1, 0, 1)).sum(-1);
}

torch::Tensor bos_decorrelation(const torch::Tensor& hidden, int64_t prefix_length,
                                const torch::Tensor& token_mask) {
  torch::Tensor cos = bos_cosines(hidden, prefix_length);  // [B, P]
  torch::Tensor squared = cos.square();
  if (!token_mask.defined()) return squared.mean();
  torch::Tensor mask = token_mask.narrow(1, 1, cos.size(1)).to(squared.scalar_type());
  return (squared * mask).sum() / mask.sum().clamp_min(1);
}

DecorrelationTerm::DecorrelationTerm(const DecorrelationTermOptions& options,
                                     const LossTermContext& context)
    : where_(context.where) {
  if (options.layers()) {
    layers_ = context.resolve_layers("layers", *options.layers());
  } else {
    for (int64_t l = 0; l + 1 < context.n_layers; ++l) layers_.push_back(l);
    if (layers_.empty())
      context.fail("layers",
                   "the default (every block but the last) is empty for a 1-block model; "
                   "list the blocks explicitly, e.g. layers: [0]");
  }
  prefix_length_ = options.prefix_length().value_or(-1);
  if (options.prefix_length() && prefix_length_ < 1)
    context.fail("prefix_length", "expected a positive number of tokens after BOS");
  token_mask_ = options.token_mask();
  factor_ = options.factor();
}

TapRequest DecorrelationTerm::taps(int64_t) const {
  TapRequest request;
  request.logits = false;
  request.hidden_layers.insert(layers_.begin(), layers_.end());
  return request;
}

torch::Tensor DecorrelationTerm::compute(const ModelOutput& output, const Batch& batch,
                                         std::map<std::string, torch::Tensor>& stats) const {
  torch::Tensor mask;
  if (token_mask_ == "loss_mask") mask = batch.loss_mask;
  if (token_mask_ == "key_padding") mask = batch.key_padding;
  check_user(token_mask_ == "none" || mask.defined(),
             "config key '" + where_ + ".token_mask': the batch has no " + token_mask_);
  torch::Tensor total;
  for (int64_t layer : layers_) {
    const torch::Tensor& hidden = hidden_tap(output, layer, "decorrelation");
    check_user(prefix_length_ <= hidden.size(1) - 1,
               "config key '" + where_ + ".prefix_length': " + std::to_string(prefix_length_) +
                   " exceeds the " + std::to_string(hidden.size(1) - 1) +
                   " tokens after BOS in this batch");
    torch::Tensor value = bos_decorrelation(hidden, prefix_length_, mask);
    total = total.defined() ? total + value : value;
    {
      torch::NoGradGuard no_grad;
      torch::Tensor cos = bos_cosines(hidden.detach(), prefix_length_);
      torch::Tensor mean_cos = cos.mean();
      if (mask.defined()) {
        torch::Tensor m = mask.narrow(1, 1, cos.size(1)).to(cos.scalar_type());
        mean_cos = (cos * m).sum() / m.sum().clamp_min(1);
      }
      const std::string suffix = "/layer" + std::to_string(layer);
      stats["stat/bos_cos" + suffix] = mean_cos;
      stats["stat/max_act" + suffix] = hidden.detach().abs().max();
    }
  }
  return total * (factor_ / static_cast<double>(layers_.size()));
}

}  // namespace attnlab
