// Implementation of the focal loss and the `focal` term (losses/focal.h).
#include "losses/focal.h"

#include <cmath>

#include "losses/targets.h"

namespace attnlab {

namespace {

torch::Tensor at_least_fp32(const torch::Tensor& x) {
  return x.scalar_type() == torch::kDouble ? x : x.to(torch::kFloat);
}

// (1-p)^g with g = 0 short-cut: pow's gradient at g = 0 is 0 * base^-1 = NaN where base = 0.
// The tiny clamp keeps pow's gradient finite for 0 < g < 1 when p rounds to exactly 1.
torch::Tensor modulating(const torch::Tensor& one_minus_p, double gamma) {
  if (gamma == 0.0) return torch::ones_like(one_minus_p);
  return one_minus_p.clamp_min(1e-30).pow(gamma);
}

// sum / denominator, or 0 (keeping the graph) when the denominator is 0 (everything ignored).
torch::Tensor safe_divide(const torch::Tensor& sum, const torch::Tensor& denominator) {
  return torch::where(denominator > 0, sum / denominator.clamp_min(1e-30), sum * 0);
}

torch::Tensor reduce(const torch::Tensor& loss, const torch::Tensor& valid,
                     const torch::Tensor& alpha_weight, FocalReduction reduction) {
  switch (reduction) {
    case FocalReduction::kNone:
      return loss;
    case FocalReduction::kSum:
      return loss.sum();
    case FocalReduction::kMean:
      return safe_divide(loss.sum(), valid.sum().to(loss.scalar_type()));
    case FocalReduction::kWeightedMean:
      return safe_divide(loss.sum(), (alpha_weight * valid).sum());
  }
  return loss;
}

torch::Tensor softmax_focal(const torch::Tensor& logits, const torch::Tensor& targets,
                            const FocalOptions& o) {
  const int64_t C = logits.size(-1);
  TORCH_CHECK(targets.sizes() == logits.sizes().slice(0, logits.dim() - 1),
              "focal (softmax): targets ", targets.sizes(), " must be logits ", logits.sizes(),
              " without the class dim");
  torch::Tensor x = at_least_fp32(logits).reshape({-1, C});
  torch::Tensor t = targets.reshape({-1}).to(torch::kLong);
  torch::Tensor valid = t != o.ignore_index;
  torch::Tensor t_safe = torch::where(valid, t, torch::zeros_like(t));
  torch::Tensor alpha;  // [C] or undefined
  if (o.alpha.defined()) {
    alpha = o.alpha.to(x.options());
    if (alpha.dim() == 0) alpha = alpha.expand({C});
    TORCH_CHECK(alpha.dim() == 1 && alpha.size(0) == C, "focal: alpha has ", alpha.numel(),
                " entries but the logits have ", C, " classes");
  }
  const double eps = o.label_smoothing;
  torch::Tensor logp = torch::log_softmax(x, -1);
  torch::Tensor logp_y = logp.gather(1, t_safe.unsqueeze(1)).squeeze(1);
  torch::Tensor alpha_y =
      alpha.defined() ? alpha.index_select(0, t_safe) : torch::ones_like(logp_y);
  torch::Tensor loss;
  if (o.smoothing == FocalSmoothing::kPt || eps == 0.0) {
    // Both readings coincide without smoothing; this path avoids the [N, C] powers.
    torch::Tensor ce = -logp_y * alpha_y * (1.0 - eps);
    if (eps > 0.0) {
      torch::Tensor weighted = alpha.defined() ? logp * alpha : logp;
      ce = ce - weighted.sum(-1) * (eps / C);
    }
    loss = modulating(-torch::expm1(logp_y), o.gamma) * ce;
  } else {
    torch::Tensor q = torch::full_like(logp, eps / C);
    q = q.scatter_add(1, t_safe.unsqueeze(1),
                      torch::full({t_safe.size(0), 1}, 1.0 - eps, logp.options()));
    torch::Tensor per_class = q * modulating(-torch::expm1(logp), o.gamma) * -logp;
    if (alpha.defined()) per_class = per_class * alpha;
    loss = per_class.sum(-1);
  }
  loss = torch::where(valid, loss, torch::zeros_like(loss));
  if (o.reduction == FocalReduction::kNone) return loss.reshape(targets.sizes());
  return reduce(loss, valid, alpha_y, o.reduction);
}

torch::Tensor sigmoid_focal(const torch::Tensor& logits, const torch::Tensor& targets,
                            const FocalOptions& o) {
  torch::Tensor x = at_least_fp32(logits);
  torch::Tensor y, valid;
  if (targets.sizes() == logits.sizes()) {
    valid = targets != o.ignore_index;
    y = torch::where(valid, targets.to(x.scalar_type()), torch::zeros_like(x));
  } else {
    TORCH_CHECK(targets.sizes() == logits.sizes().slice(0, logits.dim() - 1) &&
                    !torch::isFloatingType(targets.scalar_type()),
                "focal (sigmoid): targets ", targets.sizes(), " must match logits ", logits.sizes(),
                " or be class indices without the class dim");
    torch::Tensor t = targets.to(torch::kLong);
    torch::Tensor row_valid = t != o.ignore_index;
    torch::Tensor t_safe = torch::where(row_valid, t, torch::zeros_like(t));
    y = torch::one_hot(t_safe, logits.size(-1)).to(x.scalar_type());
    valid = row_valid.unsqueeze(-1).expand_as(x);
  }
  // Scalar alpha < 0 disables it (torchvision); per-class alpha broadcasts over the last dim.
  torch::Tensor alpha;
  if (o.alpha.defined() && !(o.alpha.dim() == 0 && o.alpha.item<double>() < 0))
    alpha = o.alpha.to(x.options());
  if (alpha.defined() && alpha.dim() == 1)
    TORCH_CHECK(alpha.size(0) == x.size(-1), "focal: alpha has ", alpha.size(0),
                " entries but the logits' last dim is ", x.size(-1));
  const double eps = o.label_smoothing;
  torch::Tensor y_s = eps > 0.0 ? y * (1.0 - eps) + eps / 2.0 : y;
  torch::Tensor alpha_t;
  torch::Tensor loss;
  if (o.smoothing == FocalSmoothing::kPt) {
    torch::Tensor ce = torch::binary_cross_entropy_with_logits(x, y_s, {}, {}, at::Reduction::None);
    // 1 - p_t = y sigmoid(-x) + (1-y) sigmoid(x): torchvision's p y + (1-p)(1-y), rearranged so
    // it keeps precision when p is close to 1.
    torch::Tensor one_minus_pt = y * torch::sigmoid(-x) + (1.0 - y) * torch::sigmoid(x);
    loss = modulating(one_minus_pt, o.gamma) * ce;
    alpha_t = alpha.defined() ? alpha * y + (1.0 - alpha) * (1.0 - y) : torch::ones_like(x);
    loss = loss * alpha_t;
  } else {
    torch::Tensor a_pos = alpha.defined() ? alpha : torch::ones({}, x.options());
    torch::Tensor a_neg = alpha.defined() ? 1.0 - alpha : torch::ones({}, x.options());
    // -log p = softplus(-x), -log(1-p) = softplus(x).
    loss = a_pos * y_s * modulating(torch::sigmoid(-x), o.gamma) * torch::softplus(-x) +
           a_neg * (1.0 - y_s) * modulating(torch::sigmoid(x), o.gamma) * torch::softplus(x);
    alpha_t = alpha.defined() ? alpha * y + (1.0 - alpha) * (1.0 - y) : torch::ones_like(x);
  }
  loss = torch::where(valid, loss, torch::zeros_like(loss));
  return reduce(loss, valid, alpha_t, o.reduction);
}

FocalReduction parse_reduction(const std::string& name) {
  if (name == "none") return FocalReduction::kNone;
  if (name == "sum") return FocalReduction::kSum;
  if (name == "weighted_mean") return FocalReduction::kWeightedMean;
  return FocalReduction::kMean;
}

}  // namespace

torch::Tensor focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                         const FocalOptions& options) {
  TORCH_CHECK(options.gamma >= 0.0, "focal: gamma must be >= 0, got ", options.gamma);
  TORCH_CHECK(options.label_smoothing >= 0.0 && options.label_smoothing <= 1.0,
              "focal: label_smoothing must lie in [0, 1], got ", options.label_smoothing);
  return options.mode == FocalMode::kSoftmax ? softmax_focal(logits, targets, options)
                                             : sigmoid_focal(logits, targets, options);
}

torch::Tensor inverse_frequency_alpha(const std::vector<int64_t>& counts) {
  TORCH_CHECK(!counts.empty(), "focal: alpha auto needs at least one class count");
  std::vector<double> inverse;
  double total = 0.0;
  for (int64_t n : counts) {
    inverse.push_back(1.0 / static_cast<double>(std::max<int64_t>(n, 1)));
    total += inverse.back();
  }
  for (auto& a : inverse) a *= static_cast<double>(counts.size()) / total;
  return torch::tensor(inverse, torch::kDouble);
}

FocalTerm::FocalTerm(const FocalTermOptions& options, const LossTermContext& context)
    : where_(context.where) {
  options_.mode = options.mode() == "softmax" ? FocalMode::kSoftmax : FocalMode::kSigmoid;
  options_.gamma = options.gamma();
  if (options_.gamma < 0.0) context.fail("gamma", "expected a value >= 0");
  options_.ignore_index = options.ignore_index();
  options_.label_smoothing = options.label_smoothing();
  if (options_.label_smoothing < 0.0 || options_.label_smoothing > 1.0)
    context.fail("label_smoothing", "expected a value in [0, 1]");
  options_.smoothing =
      options.smoothing_mode() == "soft" ? FocalSmoothing::kSoft : FocalSmoothing::kPt;
  options_.reduction = parse_reduction(options.reduction());

  const bool sigmoid = options_.mode == FocalMode::kSigmoid;
  if (!options.alpha()) {
    if (sigmoid) options_.alpha = torch::tensor(0.25, torch::kDouble);  // torchvision default
    return;
  }
  const std::vector<std::string>& alpha = *options.alpha();
  if (alpha.empty()) context.fail("alpha", "expected a non-empty list");
  if (alpha.size() == 1 && (alpha[0] == "auto" || alpha[0] == "none")) {
    if (alpha[0] == "none") return;
    if (sigmoid) context.fail("alpha", "'auto' is only supported with mode: softmax");
    alpha_auto_ = true;
    return;
  }
  std::vector<double> values;
  for (const std::string& text : alpha) {
    size_t used = 0;
    double value = 0.0;
    try {
      value = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size() || !std::isfinite(value))
      context.fail("alpha",
                   "expected a number, a list of numbers, auto or none, got '" + text + "'");
    values.push_back(value);
  }
  if (values.size() == 1) {
    // One number: a scalar alpha (torchvision's sigmoid alpha; < 0 disables it there).
    if (!sigmoid && values[0] < 0.0) context.fail("alpha", "expected a value >= 0 in softmax mode");
    options_.alpha = torch::tensor(values[0], torch::kDouble);
    return;
  }
  for (double v : values) {
    if (v < 0.0 || (sigmoid && v > 1.0))
      context.fail("alpha",
                   std::string("per-class values must lie in ") +
                       (sigmoid ? "[0, 1] (sigmoid: 1-alpha weights negatives)" : "[0, inf)"));
  }
  options_.alpha = torch::tensor(values, torch::kDouble);
}

void FocalTerm::set_class_counts(const std::vector<int64_t>& counts) {
  if (alpha_auto_) options_.alpha = inverse_frequency_alpha(counts);
}

TapRequest FocalTerm::taps(int64_t) const {
  TapRequest request;
  request.logits = true;
  return request;
}

torch::Tensor FocalTerm::compute(const ModelOutput& output, const Batch& batch,
                                 std::map<std::string, torch::Tensor>&) const {
  check_user(!alpha_auto_ || options_.alpha.defined(),
             "config key '" + where_ +
                 ".alpha': 'auto' needs the training split's class counts, which only the "
                 "classification trainer provides (LossSet::set_class_counts was not called)");
  PredictionTargets pt = prediction_targets(output, batch, options_.ignore_index, "focal");
  if (options_.alpha.defined() && options_.alpha.dim() == 1)
    check_user(options_.alpha.size(0) == pt.logits.size(-1),
               "config key '" + where_ + ".alpha': " + std::to_string(options_.alpha.size(0)) +
                   " per-class values but the model predicts " +
                   std::to_string(pt.logits.size(-1)) + " classes");
  return focal_loss(pt.logits, pt.targets, options_);
}

}  // namespace attnlab
