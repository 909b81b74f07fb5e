// `segregation` loss term: A-STAR's attention segregation (+ optional retention) loss
// (Agarwal et al., ICCV 2023; docs/methods.md §7), on attention probabilities [B, H, T_q, T_k].
//
// Overlap of two non-negative maps a, b: sum min(a, b) / sum (a + b) — the "IoU" with the SUM in
// the denominator, so it lies in [0, 0.5]: 0 for disjoint maps, 0.5 for identical ones (and 0
// where both maps are empty).
//  groups: heads  — the maps are the selected heads' attention rows (over keys) of one query; the
//                   overlap of every pair of heads, per query row, pushes heads apart.
//                   Normalisation: mean over pairs, then over query rows (real queries only when
//                   Batch.key_padding is set), batch and layers, so the loss lies in [0, 0.5].
//  groups: tokens — the A-STAR form: the map of concept c is the attention its key receives,
//                   i.e. the column(s) of the (head-averaged) attention matrix, over query
//                   positions. Concepts are key positions (concept_positions: [...]) or token ids
//                   (concept_token_ids: [...]; every occurrence in Batch.input is summed).
//                   Normalisation: SUM over concept pairs (A-STAR Eq. 2), mean over batch/layers.
// pair_reduction (mean | sum) overrides those defaults (mean for heads, sum for tokens).
//
// Retention (Eq. 3, off unless retention_weight > 0): per map m,
//   1 - sum min(A^m, B^m) / sum (A^m + B^m),  B^m = 1[minmax_normalise(ref^m) >= threshold]
// (min and max over the map), reduced over maps like the pairs (sum for tokens, mean for heads)
// and added as retention_weight * L_ret per layer. `retention_reference: previous` (default)
// binarises the detached map from this term's previous compute() call (A-STAR: the previous
// denoising step) when it has the same shape, else the current step's detached map (first call,
// batch-shape change); `current` always uses the current step's detached map. NOTE: the term
// keeps that detached reference between calls (so evaluation calls also update it).
//
// keys: groups, layers (default: every block), heads (default: all), concept_positions,
// concept_token_ids, pair_reduction, retention_weight (0), retention_threshold (0.5),
// retention_reference (previous | current). Requests prob taps for its layers only.
#pragma once

#include <torch/arg.h>
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "losses/loss_term.h"

namespace attnlab {

// maps [N, G, D] -> [N, G(G-1)/2] overlaps of every pair (i < j, row-major order).
torch::Tensor pairwise_overlap(const torch::Tensor& maps);
// maps [N, G, D] -> {0,1} of the same shape: min-max normalise over D, then >= threshold.
torch::Tensor binarize_maps(const torch::Tensor& maps, double threshold);
// maps, reference [N, G, D] -> [N, G]: 1 - sum min(maps, ref) / sum (maps + ref).
torch::Tensor retention_loss(const torch::Tensor& maps, const torch::Tensor& reference);

// The `segregation` term's keys (besides name and weight); configs/loss/segregation.yaml.
struct SegregationTermOptions {
  TORCH_ARG(std::string, groups) = "heads";
  TORCH_ARG(std::optional<std::vector<int64_t>>, layers) = std::nullopt;
  TORCH_ARG(std::optional<std::vector<int64_t>>, heads) = std::nullopt;
  TORCH_ARG(std::optional<std::vector<int64_t>>, concept_positions) = std::nullopt;
  TORCH_ARG(std::optional<std::vector<int64_t>>, concept_token_ids) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, pair_reduction) = std::nullopt;
  TORCH_ARG(double, retention_weight) = 0.0;
  TORCH_ARG(double, retention_threshold) = 0.5;
  TORCH_ARG(std::string, retention_reference) = "previous";

 public:
  template <class V>
  void visit(V& v) {
    v("groups", groups(), "heads (maps of heads) | tokens (maps of concept tokens)",
      config::one_of({"heads", "tokens"}));
    v("layers", layers(), "blocks whose attention is read (negatives from the end); null: all");
    v("heads", heads(), "heads that form the pairs; null: all", config::at_least(0));
    v("concept_positions", concept_positions(), "groups: tokens, concepts by position",
      config::at_least(0));
    v("concept_token_ids", concept_token_ids(), "groups: tokens, concepts by token id");
    v("pair_reduction", pair_reduction(), "mean | sum over pairs; null: mean (heads), sum (tokens)",
      config::one_of({"mean", "sum"}));
    v("retention_weight", retention_weight(), "weight of the retention loss", config::at_least(0.0),
      config::finite());
    v("retention_threshold", retention_threshold(), "binarisation threshold of the maps",
      config::in_range(0.0, 1.0));
    v("retention_reference", retention_reference(),
      "previous (the maps of the previous step) | current",
      config::one_of({"previous", "current"}));
  }
};

class SegregationTerm : public LossTerm {
 public:
  SegregationTerm(const SegregationTermOptions& options, const LossTermContext& context);
  TapRequest taps(int64_t n_layers) const override;
  torch::Tensor compute(const ModelOutput& output, const Batch& batch,
                        std::map<std::string, torch::Tensor>& stats) const override;

 private:
  // The [N, G, D] maps of one layer and the weight of each of the N instances.
  void layer_maps(const torch::Tensor& probs, const Batch& batch, torch::Tensor& maps,
                  torch::Tensor& row_weight) const;

  bool by_heads_ = true;
  std::vector<int64_t> layers_;
  std::vector<int64_t> heads_;  // empty = all
  std::vector<int64_t> concept_positions_;
  std::vector<int64_t> concept_token_ids_;
  bool pair_sum_ = false;
  double retention_weight_ = 0.0;
  double retention_threshold_ = 0.5;
  bool reference_previous_ = true;
  std::string where_;
  // Detached maps of the previous call per layer (the retention reference); mutable because the
  // reference is state carried across steps, not part of the loss's inputs.
  mutable std::map<int64_t, torch::Tensor> previous_maps_;
};

}  // namespace attnlab
