// Implementation of the A-STAR segregation/retention loss (losses/segregation.h).
#include "losses/segregation.h"

#include "losses/targets.h"

namespace attnlab {

namespace {
// Ratio with 0 where the denominator is 0 (both maps empty), without NaN gradients.
torch::Tensor safe_ratio(const torch::Tensor& num, const torch::Tensor& den) {
  torch::Tensor positive = den > 0;
  return torch::where(positive, num / torch::where(positive, den, torch::ones_like(den)),
                      torch::zeros_like(num));
}
}  // namespace

torch::Tensor pairwise_overlap(const torch::Tensor& maps) {
  TORCH_CHECK(maps.dim() == 3, "segregation: expected maps [N, G, D], got ", maps.sizes());
  const int64_t G = maps.size(1);
  auto pairs = torch::triu_indices(G, G, 1, torch::TensorOptions().device(maps.device()));
  torch::Tensor a = maps.index_select(1, pairs[0]);
  torch::Tensor b = maps.index_select(1, pairs[1]);
  return safe_ratio(torch::minimum(a, b).sum(-1), (a + b).sum(-1));
}

torch::Tensor binarize_maps(const torch::Tensor& maps, double threshold) {
  torch::Tensor lo = std::get<0>(maps.min(-1, true));
  torch::Tensor hi = std::get<0>(maps.max(-1, true));
  torch::Tensor normalised = safe_ratio(maps - lo, (hi - lo).expand_as(maps));
  return (normalised >= threshold).to(maps.scalar_type());
}

torch::Tensor retention_loss(const torch::Tensor& maps, const torch::Tensor& reference) {
  return 1.0 - safe_ratio(torch::minimum(maps, reference).sum(-1), (maps + reference).sum(-1));
}

SegregationTerm::SegregationTerm(const SegregationTermOptions& options,
                                 const LossTermContext& context)
    : where_(context.where) {
  by_heads_ = options.groups() == "heads";
  if (options.layers()) {
    layers_ = context.resolve_layers("layers", *options.layers());
  } else {
    for (int64_t l = 0; l < context.n_layers; ++l) layers_.push_back(l);
  }
  heads_ = options.heads().value_or(std::vector<int64_t>{});
  if (options.heads() && heads_.empty()) context.fail("heads", "expected at least one head");
  for (int64_t h : heads_)
    if (h < 0) context.fail("heads", "head indices must be >= 0, got " + std::to_string(h));
  if (by_heads_) {
    if (options.heads() && heads_.size() < 2)
      context.fail("heads", "groups: heads needs at least 2 heads to form pairs");
    if (options.concept_positions())
      context.fail("concept_positions", "only used with groups: tokens");
    if (options.concept_token_ids())
      context.fail("concept_token_ids", "only used with groups: tokens");
  } else {
    concept_positions_ = options.concept_positions().value_or(std::vector<int64_t>{});
    concept_token_ids_ = options.concept_token_ids().value_or(std::vector<int64_t>{});
    if (concept_positions_.empty() == concept_token_ids_.empty())
      context.fail("concept_positions",
                   "groups: tokens needs exactly one of concept_positions or concept_token_ids");
    for (int64_t p : concept_positions_)
      if (p < 0) context.fail("concept_positions", "positions must be >= 0");
  }
  pair_sum_ = options.pair_reduction().value_or(by_heads_ ? "mean" : "sum") == "sum";
  retention_weight_ = options.retention_weight();
  if (retention_weight_ < 0.0) context.fail("retention_weight", "expected a value >= 0");
  retention_threshold_ = options.retention_threshold();
  if (retention_threshold_ < 0.0 || retention_threshold_ > 1.0)
    context.fail("retention_threshold", "expected a value in [0, 1]");
  reference_previous_ = options.retention_reference() == "previous";
}

TapRequest SegregationTerm::taps(int64_t) const {
  TapRequest request;
  request.logits = false;
  request.prob_layers.insert(layers_.begin(), layers_.end());
  return request;
}

void SegregationTerm::layer_maps(const torch::Tensor& probs, const Batch& batch,
                                 torch::Tensor& maps, torch::Tensor& row_weight) const {
  TORCH_CHECK(probs.dim() == 4, "segregation: expected probs [B, H, T_q, T_k], got ",
              probs.sizes());
  const int64_t B = probs.size(0), H = probs.size(1), Tq = probs.size(2), Tk = probs.size(3);
  torch::Tensor selected = probs;
  if (!heads_.empty()) {
    for (int64_t h : heads_)
      check_user(h < H, "config key '" + where_ + ".heads': head " + std::to_string(h) +
                            " does not exist (the layer has " + std::to_string(H) + " heads)");
    selected = probs.index_select(1, torch::tensor(heads_, torch::kLong).to(probs.device()));
  }
  // Query rows that are padding carry no attention worth segregating.
  torch::Tensor query_weight = torch::ones({B, Tq}, probs.options());
  if (batch.key_padding.defined() && batch.key_padding.size(1) == Tq)
    query_weight = batch.key_padding.to(probs.scalar_type());
  if (by_heads_) {
    check_user(selected.size(1) >= 2,
               "config key '" + where_ + ".heads': groups: heads needs at least 2 heads");
    maps = selected.permute({0, 2, 1, 3}).reshape({B * Tq, selected.size(1), Tk});
    row_weight = query_weight.reshape({B * Tq});
    return;
  }
  torch::Tensor select;  // [B, T_k, C]: which keys make up each concept
  if (!concept_positions_.empty()) {
    for (int64_t p : concept_positions_)
      check_user(p < Tk, "config key '" + where_ + ".concept_positions': position " +
                             std::to_string(p) + " is beyond the " + std::to_string(Tk) +
                             " keys of this batch");
    auto positions = torch::tensor(concept_positions_, torch::kLong).to(probs.device());
    select = torch::one_hot(positions, Tk)
                 .t()
                 .to(probs.scalar_type())
                 .unsqueeze(0)
                 .expand({B, Tk, static_cast<int64_t>(concept_positions_.size())});
  } else {
    TORCH_CHECK(batch.input.defined() && batch.input.size(1) == Tk,
                "segregation: concept_token_ids needs Batch.input [B, T_k]");
    auto ids = torch::tensor(concept_token_ids_, torch::kLong).to(probs.device());
    select = (batch.input.to(torch::kLong).unsqueeze(-1) == ids).to(probs.scalar_type());
  }
  torch::Tensor averaged = selected.mean(1) * query_weight.unsqueeze(-1);  // [B, T_q, T_k]
  maps = torch::matmul(averaged, select).transpose(1, 2);                  // [B, C, T_q]
  row_weight = torch::ones({B}, probs.options());
}

torch::Tensor SegregationTerm::compute(const ModelOutput& output, const Batch& batch,
                                       std::map<std::string, torch::Tensor>& stats) const {
  torch::Tensor total;
  for (int64_t layer : layers_) {
    const torch::Tensor& probs = prob_tap(output, layer, "segregation");
    torch::Tensor maps, row_weight;
    layer_maps(probs.scalar_type() == torch::kDouble ? probs : probs.to(torch::kFloat), batch, maps,
               row_weight);
    auto reduce_groups = [&](const torch::Tensor& per) {
      return pair_sum_ ? per.sum(-1) : per.mean(-1);
    };
    torch::Tensor per_row =
        maps.size(1) >= 2 ? reduce_groups(pairwise_overlap(maps)) : torch::zeros_like(row_weight);
    torch::Tensor value = (per_row * row_weight).sum() / row_weight.sum().clamp_min(1);
    stats["stat/segregation/layer" + std::to_string(layer)] = value.detach();
    if (retention_weight_ > 0.0) {
      torch::Tensor current = maps.detach();
      torch::Tensor reference = current;
      auto it = previous_maps_.find(layer);
      if (reference_previous_ && it != previous_maps_.end() &&
          it->second.sizes() == current.sizes())
        reference = it->second;
      torch::Tensor binary = binarize_maps(reference, retention_threshold_);
      torch::Tensor ret = reduce_groups(retention_loss(maps, binary));
      ret = (ret * row_weight).sum() / row_weight.sum().clamp_min(1);
      stats["stat/retention/layer" + std::to_string(layer)] = ret.detach();
      value = value + retention_weight_ * ret;
      if (reference_previous_) previous_maps_[layer] = current;
    }
    total = total.defined() ? total + value : value;
  }
  return total / static_cast<double>(layers_.size());
}

}  // namespace attnlab
