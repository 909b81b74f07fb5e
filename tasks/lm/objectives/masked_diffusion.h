// `objective=masked_diffusion`: absorbing-state ([MASK]) masked-diffusion language modelling as in
// BD3-LM (kuleshov-group/bd3lms) and Efficient-DLM (docs/methods.md §4). A clean sequence x_0 (the
// batch input; there is no token shift — each masked token is predicted at its own position) is
// corrupted with t ~ U(t_min, t_max) per sequence or per block (optionally antithetic, as bd3lms
// _sample_t), every token masked iff u ≤ p (p = t, or Efficient-DLM position-dependent p_i), BOS
// (position 0) never masked. The loss is
//   L = Σ_{masked i} −log p_θ(x0_i | x_t) · weight_i  ÷  number of (real) tokens,
// weight_i = 1/t (or 1/p_i), with the SUBS parameterisation (the [MASK] logit is −∞).
// With clean_context the model sees [x_t ; x_0] with the BD3-LM three-part mask and both halves
// at positions 0..n−1; only the first n logits are used.
//
// The masking and loss are pure functions (unit-testable without a model); the objective class
// composes them with GptImpl::forward. Loss terms: `cross_entropy` in loss.terms is replaced by
// the diffusion NLL (reported as loss/masked_diffusion); other terms and module aux losses are
// added as in the autoregressive objective.
#pragma once

#include <torch/arg.h>
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>

#include "trainer/objective.h"

namespace attnlab {

enum class PositionMasking { kNone, kClip, kCount };

struct MaskedDiffusionOptions {
  bool t_per_block = false;  // objective.t_per: sequence | block
  double t_min = 1e-3, t_max = 1.0;
  int64_t block_size = 0;  // objective.block_size; 0 = model.block_size (or whole sequence)
  bool antithetic = true;
  bool clean_context = false;
  PositionMasking position_masking = PositionMasking::kNone;
  double half_life = 0.1;     // λ: β = ln2 / (λ·L')
  bool weight_inv_p = false;  // objective.loss_weight: inv_t | inv_p
  bool ignore_bos = true;
};

// The `objective:` group of objective=masked_diffusion as configs write it
// (configs/objective/masked_diffusion.yaml holds the same defaults; a test keeps them equal).
struct MaskedDiffusionObjectiveOptions {
  TORCH_ARG(std::string, t_per) = "sequence";
  TORCH_ARG(double, t_min) = 1e-3;
  TORCH_ARG(double, t_max) = 1.0;
  TORCH_ARG(std::optional<int64_t>, block_size) = std::nullopt;
  TORCH_ARG(bool, antithetic) = true;
  TORCH_ARG(bool, clean_context) = false;
  TORCH_ARG(std::string, position_masking) = "none";
  TORCH_ARG(double, half_life) = 0.1;
  TORCH_ARG(std::string, loss_weight) = "inv_t";
  TORCH_ARG(bool, ignore_bos) = true;

 public:
  // Ranges and the combinations that do not fit are checked by masked_diffusion_options, with
  // their own messages.
  template <class V>
  void visit(V& v) {
    v("t_per", t_per(), "one t per sequence | per block");
    v("t_min", t_min(), "t ~ U(t_min, t_max), 0 < t_min <= t_max <= 1");
    v("t_max", t_max(), "see t_min");
    v("block_size", block_size(),
      "L' for per-block t and position masking; null: model.block_size, else the sequence");
    v("antithetic", antithetic(), "stratified t draws, as bd3lms");
    v("clean_context", clean_context(), "BD3-LM's [x_t ; x_0] input with the three-part mask");
    v("position_masking", position_masking(),
      "none | clip | count (Efficient-DLM's position-dependent masking)");
    v("half_life", half_life(), "lambda of the position weights, > 0");
    v("loss_weight", loss_weight(), "inv_t | inv_p (1/t or 1/p_i per masked token)");
    v("ignore_bos", ignore_bos(), "position 0 is context, never masked or predicted");
  }
};

// The resolved options of a bound group (UserError naming the key on bad values).
MaskedDiffusionOptions masked_diffusion_options(const MaskedDiffusionObjectiveOptions& group);
// Binds `objective.*` (strict: an unknown key is one line naming it) and resolves it. Defined
// for YAML::Node.
template <class ConfigTree>
MaskedDiffusionOptions masked_diffusion_options(const ConfigTree& config);

// t of shape [batch, groups] in [t_min, t_max]; antithetic: bd3lms stratification
// ((u_j / K + j / K) mod 1 over the K = batch·groups draws).
torch::Tensor sample_diffusion_times(int64_t batch, int64_t groups,
                                     const MaskedDiffusionOptions& options,
                                     torch::Generator& generator);

struct MaskingDecision {
  torch::Tensor masked;  // [B, T] bool: token replaced by [MASK]
  torch::Tensor t;       // [B, T] the t of each token's sequence/block
  torch::Tensor p;       // [B, T] per-token masking probability (t, or p_i for clip; t for count)
};

// Masks tokens given per-token t ([B, T]) and which tokens may be masked ([B, T] bool: not BOS,
// not padding). `block` = L' (in-block positions for position-dependent masking, blocks start at
// multiples of L'). Random numbers come from `generator` (CPU); pass CPU tensors.
MaskingDecision sample_masking(const torch::Tensor& t, const torch::Tensor& maskable, int64_t block,
                               const MaskedDiffusionOptions& options, torch::Generator& generator);

// Efficient-DLM eq. 2 weights w_i(t) = exp(β(1−t)·i), i = position % block, β = ln2/(λ·block).
torch::Tensor position_weights(const torch::Tensor& t, int64_t block, double half_life);

// Σ_{masked} −log softmax(logits with [MASK] at −∞)[x0] · weight ÷ token_count.
// logits [B, T, V]; x0, masked, weight [B, T]. Computed in at least float32.
torch::Tensor masked_diffusion_loss(const torch::Tensor& logits, const torch::Tensor& x0,
                                    const torch::Tensor& masked, const torch::Tensor& weight,
                                    int64_t mask_token, double token_count);
// The same with the count as a 0-d tensor on the logits' device (the training step passes it so
// that no value is read back to the host).
torch::Tensor masked_diffusion_loss(const torch::Tensor& logits, const torch::Tensor& x0,
                                    const torch::Tensor& masked, const torch::Tensor& weight,
                                    int64_t mask_token, const torch::Tensor& token_count);

// SUBS parameterisation: logits with the [MASK] column set to −∞.
torch::Tensor subs_logits(const torch::Tensor& logits, int64_t mask_token);

// Everything one masked-diffusion step computes (used by the objective and the probe).
struct MaskedDiffusionStep {
  torch::Tensor loss;     // scalar with a graph
  torch::Tensor logits;   // [B, T, V] (first half with clean_context)
  torch::Tensor x0, x_t;  // [B, T]
  MaskingDecision decision;
  ModelOutput output;  // the raw model output (taps)
};

MaskedDiffusionStep masked_diffusion_step(GptImpl& model, const Batch& batch,
                                          const MaskedDiffusionOptions& options,
                                          ObjectiveContext& context, const TapRequest& taps);

// For `probe.target=masked_diffusion_loss`: logits, targets (x0), masked, t, input (x_t), loss and
// the gradient of the loss w.r.t. the logits (all detached, CPU).
template <class ConfigTree>
std::map<std::string, torch::Tensor> masked_diffusion_probe(GptImpl& model, const Batch& batch,
                                                            const ConfigTree& config,
                                                            ObjectiveContext& context);

class MaskedDiffusionObjective : public ObjectiveImpl {
 public:
  explicit MaskedDiffusionObjective(const MaskedDiffusionObjectiveOptions& options);
  LossResult compute(GptImpl& model, const Batch& batch, const LossSet& losses,
                     ObjectiveContext& context, bool training) override;
  // The NELBO per predicted token (an upper bound on the NLL, docs/methods.md §4): the loss is
  // Σ_masked CE/t ÷ (all T tokens), rescaled to ÷ (tokens that can be masked), because position
  // 0 (objective.ignore_bos) is given as context and never predicted. eval.json keeps the
  // unscaled objective loss beside it.
  EvalRow evaluation_row(const EvalResult& result, int64_t seq_len) const override;
  std::string evaluation_title(int64_t t_samples) const override;
  bool evaluates_with_noise() const override { return true; }

 private:
  MaskedDiffusionOptions options_;
};

}  // namespace attnlab
