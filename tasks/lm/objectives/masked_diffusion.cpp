// Masked-diffusion objective; see masked_diffusion.h.
#include "tasks/lm/objectives/masked_diffusion.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <limits>

#include "common/config_access.h"
#include "config/options.h"
#include "losses/loss_set.h"
#include "trainer/evaluator.h"

namespace attnlab {

namespace {

// [B, T] -> [B, n_blocks, block] padded with `fill` (the last block may be partial).
torch::Tensor to_blocks(const torch::Tensor& x, int64_t block, double fill) {
  const int64_t length = x.size(1), n_blocks = (length + block - 1) / block;
  auto padded = torch::constant_pad_nd(x, {0, n_blocks * block - length}, fill);
  return padded.view({x.size(0), n_blocks, block});
}

torch::Tensor from_blocks(const torch::Tensor& x, int64_t length) {
  return x.reshape({x.size(0), -1}).narrow(1, 0, length);
}

torch::Tensor uniform(at::IntArrayRef shape, torch::Generator& generator) {
  return torch::rand(shape, generator, torch::TensorOptions().dtype(torch::kDouble));
}

// L': objective.block_size, else the model's attention block size, else the whole sequence.
int64_t resolve_block(const MaskedDiffusionOptions& options, const GptImpl& model, int64_t length) {
  if (options.block_size > 0) return options.block_size;
  if (model.options().mask.block_size > 0) return model.options().mask.block_size;
  return length;
}

}  // namespace

MaskedDiffusionOptions masked_diffusion_options(const MaskedDiffusionObjectiveOptions& group) {
  MaskedDiffusionOptions o;
  const std::string& t_per = group.t_per();
  check_user(t_per == "sequence" || t_per == "block",
             "config key 'objective.t_per': expected sequence or block, got '" + t_per + "'");
  o.t_per_block = t_per == "block";
  o.t_min = group.t_min();
  o.t_max = group.t_max();
  check_user(o.t_min > 0 && o.t_min <= o.t_max && o.t_max <= 1.0,
             "config keys 'objective.t_min'/'objective.t_max': need 0 < t_min <= t_max <= 1, got " +
                 std::to_string(o.t_min) + ", " + std::to_string(o.t_max));
  o.block_size = group.block_size().value_or(0);
  check_user(o.block_size >= 0, "config key 'objective.block_size': expected >= 0");
  o.antithetic = group.antithetic();
  o.clean_context = group.clean_context();
  const std::string& pm = group.position_masking();
  if (pm == "none")
    o.position_masking = PositionMasking::kNone;
  else if (pm == "clip")
    o.position_masking = PositionMasking::kClip;
  else if (pm == "count")
    o.position_masking = PositionMasking::kCount;
  else
    throw UserError("config key 'objective.position_masking': expected none, clip or count, got '" +
                    pm + "'");
  o.half_life = group.half_life();
  check_user(o.half_life > 0, "config key 'objective.half_life': expected > 0");
  const std::string& weight = group.loss_weight();
  check_user(weight == "inv_t" || weight == "inv_p",
             "config key 'objective.loss_weight': expected inv_t or inv_p, got '" + weight + "'");
  o.weight_inv_p = weight == "inv_p";
  check_user(!(o.weight_inv_p && o.position_masking == PositionMasking::kCount),
             "objective.loss_weight=inv_p needs per-token probabilities, which "
             "objective.position_masking=count does not define; use inv_t or clip");
  o.ignore_bos = group.ignore_bos();
  return o;
}

template <class ConfigTree>
MaskedDiffusionOptions masked_diffusion_options(const ConfigTree& config) {
  return masked_diffusion_options(config::bind<MaskedDiffusionObjectiveOptions>(
      cfg::find(config, "objective"), "objective",
      config::BindScope{"objective 'masked_diffusion'", {"name"}}));
}

template MaskedDiffusionOptions masked_diffusion_options(const YAML::Node&);

torch::Tensor sample_diffusion_times(int64_t batch, int64_t groups,
                                     const MaskedDiffusionOptions& options,
                                     torch::Generator& generator) {
  auto u = uniform({batch, groups}, generator);
  if (options.antithetic) {
    const double k = static_cast<double>(batch * groups);
    auto offset = torch::arange(batch * groups, u.options()).view({batch, groups}) / k;
    u = torch::fmod(u / k + offset, 1.0);
  }
  return u * (options.t_max - options.t_min) + options.t_min;
}

torch::Tensor position_weights(const torch::Tensor& t, int64_t block, double half_life) {
  const double beta = std::log(2.0) / (half_life * static_cast<double>(block));
  auto index = torch::arange(t.size(1), t.options()).remainder(block).unsqueeze(0);
  return torch::exp(beta * (1.0 - t) * index);
}

MaskingDecision sample_masking(const torch::Tensor& t, const torch::Tensor& maskable, int64_t block,
                               const MaskedDiffusionOptions& options, torch::Generator& generator) {
  TORCH_CHECK(t.dim() == 2 && t.sizes() == maskable.sizes(), "sample_masking: t/maskable [B, T]");
  TORCH_CHECK(block > 0, "sample_masking: block must be > 0");
  const int64_t length = t.size(1);
  auto keep_allowed = maskable.to(torch::kBool);
  auto u = uniform(t.sizes(), generator).to(t.options());
  MaskingDecision d;
  d.t = t;
  d.p = t;
  switch (options.position_masking) {
    case PositionMasking::kNone:
      d.masked = (u <= t) & keep_allowed;
      break;
    case PositionMasking::kClip: {
      // (a) p_i = clip(t·L'·w_i/Σw, 0, 1) with L' the block's actual length (mean p = t unclipped).
      auto w = position_weights(t, block, options.half_life);
      auto w_blocks = to_blocks(w, block, 0.0);
      auto sizes = to_blocks(torch::ones_like(w), block, 0.0).sum(-1, true);
      auto share = w_blocks * sizes / w_blocks.sum(-1, true);  // L'·w_i/Σw, mean 1 per block
      d.p = (from_blocks(share, length) * t).clamp(0.0, 1.0);
      d.masked = (u <= d.p) & keep_allowed;
      break;
    }
    case PositionMasking::kCount: {
      // (b) count ~ Bin(#maskable in block, t) (same law as uniform masking), then positions
      // drawn ∝ w without replacement (Gumbel-top-k over log w).
      auto hits = ((u <= t) & keep_allowed).to(t.scalar_type());
      auto count = to_blocks(hits, block, 0.0).sum(-1, true);  // [B, nb, 1]
      auto g = uniform(t.sizes(), generator).to(t.options()).clamp_min(1e-300);
      auto key =
          torch::log(position_weights(t, block, options.half_life)) - torch::log(-torch::log(g));
      key = key.masked_fill(keep_allowed.logical_not(), -std::numeric_limits<double>::infinity());
      auto key_blocks = to_blocks(key, block, -std::numeric_limits<double>::infinity());
      auto order = key_blocks.argsort(-1, /*descending=*/true);
      auto rank = order.argsort(-1, /*descending=*/false).to(t.scalar_type());
      d.masked = from_blocks(rank < count, length) & keep_allowed;
      break;
    }
  }
  return d;
}

torch::Tensor subs_logits(const torch::Tensor& logits, int64_t mask_token) {
  auto index = torch::tensor({mask_token}, logits.options().dtype(torch::kLong));
  return logits.index_fill(-1, index, -std::numeric_limits<double>::infinity());
}

torch::Tensor masked_diffusion_loss(const torch::Tensor& logits, const torch::Tensor& x0,
                                    const torch::Tensor& masked, const torch::Tensor& weight,
                                    int64_t mask_token, double token_count) {
  return masked_diffusion_loss(logits, x0, masked, weight, mask_token,
                               torch::tensor(token_count, torch::kFloat64).to(logits.device()));
}

torch::Tensor masked_diffusion_loss(const torch::Tensor& logits, const torch::Tensor& x0,
                                    const torch::Tensor& masked, const torch::Tensor& weight,
                                    int64_t mask_token, const torch::Tensor& token_count) {
  auto compute = logits.scalar_type() == torch::kDouble ? logits : logits.to(torch::kFloat);
  auto log_probs = torch::log_softmax(subs_logits(compute, mask_token), -1);
  auto nll = -log_probs.gather(-1, x0.unsqueeze(-1)).squeeze(-1);  // [B, T]
  auto terms = torch::where(masked.to(torch::kBool), nll * weight.to(nll.scalar_type()),
                            torch::zeros_like(nll));
  // Counts are exact in float32 (< 2^24), so this equals dividing by the count as a scalar.
  return terms.sum() / token_count.clamp_min(1.0).to(terms.scalar_type());
}

MaskedDiffusionStep masked_diffusion_step(GptImpl& model, const Batch& batch,
                                          const MaskedDiffusionOptions& options,
                                          ObjectiveContext& context, const TapRequest& taps) {
  const int64_t vocab = model.options().vocab_size;
  check_user(context.mask_token >= 0 && context.mask_token < vocab,
             "objective=masked_diffusion needs a tokenizer with a [MASK] token inside the model "
             "vocabulary (mask id " +
                 std::to_string(context.mask_token) + ", vocab " + std::to_string(vocab) + ")");
  MaskedDiffusionStep step;
  step.x0 = batch.input;
  const int64_t batch_size = step.x0.size(0), length = step.x0.size(1);
  auto device_bool = step.x0.options().dtype(torch::kBool);
  // Real tokens count in the denominator; BOS and padding are never masked.
  torch::Tensor real = torch::ones({batch_size, length}, device_bool);
  if (batch.key_padding.defined()) real = real & batch.key_padding.to(torch::kBool);
  if (batch.loss_mask.defined()) real = real & batch.loss_mask.to(torch::kBool);
  auto maskable = real.clone();
  if (options.ignore_bos) maskable.select(1, 0).fill_(false);

  const int64_t block = resolve_block(options, model, length);
  const int64_t groups = options.t_per_block ? (length + block - 1) / block : 1;
  // Randomness is drawn on the CPU (context.generator) in float64, then moved to the device.
  auto t = sample_diffusion_times(batch_size, groups, options, context.generator);
  t = t.repeat_interleave(options.t_per_block ? block : length, 1).narrow(1, 0, length);
  step.decision = sample_masking(t, maskable.cpu(), block, options, context.generator);
  for (auto* x : {&step.decision.masked, &step.decision.t, &step.decision.p})
    *x = x->to(step.x0.device());
  step.x_t =
      torch::where(step.decision.masked, torch::full_like(step.x0, context.mask_token), step.x0);

  ForwardOptions forward;
  forward.taps = taps;
  forward.taps.logits = true;
  MaskSpec mask = model.options().mask;
  mask.key_padding = batch.key_padding;
  torch::Tensor tokens = step.x_t;
  if (options.clean_context) {
    // BD3-LM [x_t ; x_0]: both halves at positions 0..n−1, three-part block mask.
    mask.kind = MaskKind::kBlockCausal;
    mask.block_size = block;
    mask.clean_context = true;
    if (batch.key_padding.defined())
      mask.key_padding = torch::cat({batch.key_padding, batch.key_padding}, 1);
    tokens = torch::cat({step.x_t, step.x0}, 1);
    auto half = torch::arange(length, step.x0.options().dtype(torch::kLong));
    forward.positions = torch::cat({half, half});
  }
  forward.mask = mask;
  step.output = model.forward(tokens, forward);
  step.logits = step.output.logits.narrow(1, 0, length);
  step.output.logits = step.logits;
  auto weight = 1.0 / (options.weight_inv_p ? step.decision.p : step.decision.t);
  step.loss = masked_diffusion_loss(step.logits, step.x0, step.decision.masked, weight,
                                    context.mask_token, real.sum());
  return step;
}

template <class ConfigTree>
std::map<std::string, torch::Tensor> masked_diffusion_probe(GptImpl& model, const Batch& batch,
                                                            const ConfigTree& config,
                                                            ObjectiveContext& context) {
  auto options = masked_diffusion_options(config);
  TapRequest taps;
  auto step = masked_diffusion_step(model, batch, options, context, taps);
  auto logit_grad = torch::autograd::grad({step.loss}, {step.logits})[0];
  auto cpu = [](const torch::Tensor& x) { return x.detach().cpu(); };
  return {{"logits", cpu(step.logits)}, {"targets", cpu(step.x0)},
          {"input", cpu(step.x_t)},     {"masked", cpu(step.decision.masked)},
          {"t", cpu(step.decision.t)},  {"p", cpu(step.decision.p)},
          {"loss", cpu(step.loss)},     {"logit_grad", cpu(logit_grad)}};
}

template std::map<std::string, torch::Tensor> masked_diffusion_probe(GptImpl&, const Batch&,
                                                                     const YAML::Node&,
                                                                     ObjectiveContext&);

MaskedDiffusionObjective::MaskedDiffusionObjective(const MaskedDiffusionObjectiveOptions& options)
    : options_(masked_diffusion_options(options)) {}

LossResult MaskedDiffusionObjective::compute(GptImpl& model, const Batch& batch,
                                             const LossSet& losses, ObjectiveContext& context,
                                             bool /*training*/) {
  auto step = masked_diffusion_step(model, batch, options_, context, losses.taps());
  LossResult result;
  result.total = step.loss;
  result.terms["loss/masked_diffusion"] = step.loss;
  // Other loss terms see the clean sequence as target (no token shift); cross_entropy is the
  // diffusion NLL above.
  Batch term_batch = batch;
  term_batch.target = step.x0;
  for (const auto& entry : losses.entries()) {
    if (entry.name == "cross_entropy") continue;
    torch::Tensor value = entry.term->compute(step.output, term_batch, result.terms);
    result.terms[entry.key] = value;
    result.total = result.total + value * entry.weight;
  }
  for (const auto& [name, value] : step.output.aux_losses) {
    result.terms["aux/" + name] = value;
    result.total = result.total + value;
  }
  result.terms["stat/mask_rate"] = step.decision.masked.to(torch::kFloat).mean().detach();
  result.terms["stat/t_mean"] = step.decision.t.to(torch::kFloat).mean().detach();
  return result;
}

EvalRow MaskedDiffusionObjective::evaluation_row(const EvalResult& result, int64_t seq_len) const {
  const int64_t predicted = seq_len - (options_.ignore_bos ? 1 : 0);
  check_user(predicted > 0, "eval.seq_lens: " + std::to_string(seq_len) +
                                " leaves no token to predict (objective.ignore_bos)");
  const double scale = static_cast<double>(seq_len) / static_cast<double>(predicted);
  const double nelbo = result.loss * scale;
  return {{"objective_loss", result.loss},
          {"val_loss", nelbo},
          {"val_perplexity", std::exp(nelbo)},
          {"val_bits_per_byte", result.bits_per_byte * scale},
          {"predicted_tokens_per_window", predicted}};
}

std::string MaskedDiffusionObjective::evaluation_title(int64_t t_samples) const {
  return "masked-diffusion NELBO per predicted token (val_loss, an upper bound on the NLL), " +
         std::to_string(t_samples) +
         " (t, mask) draw(s) per window from the evaluator's fixed seed";
}

}  // namespace attnlab
