// Encoder classifier; see sequence_classifier.h.
#include "modules/sequence_classifier.h"

#include "common/error.h"

namespace attnlab {

Pooling parse_pooling(const std::string& name) {
  if (name == "cls") return Pooling::kCls;
  if (name == "mean") return Pooling::kMean;
  throw UserError("config key 'task.pooling': expected cls or mean, got '" + name + "'");
}

SequenceClassifierImpl::SequenceClassifierImpl(const GptOptions& options, int64_t num_classes,
                                               Pooling pooling)
    : encoder_(Gpt(options)), num_classes_(num_classes), pooling_(pooling) {
  check_user(num_classes >= 2,
             "a classifier needs at least 2 classes, got " + std::to_string(num_classes));
  // The GPT's children are registered here under their own names (not under "encoder."), so
  // the state_dict keys match an LM checkpoint's.
  register_module("embed", encoder_->embed);
  if (encoder_->pos_embed) register_module("pos_embed", encoder_->pos_embed);
  register_module("blocks", encoder_->block_list);
  register_module("final_norm", encoder_->final_norm);
  classifier = register_module("classifier", torch::nn::Linear(options.d_model, num_classes));
  torch::NoGradGuard no_grad;
  // Same N(0, 0.02) as the GPT's other matrices; zero bias = uniform initial prediction.
  classifier->weight.normal_(0.0, 0.02);
  classifier->bias.zero_();
}

void SequenceClassifierImpl::train(bool on) {
  torch::nn::Module::train(on);
  encoder_->train(on);
}

torch::Tensor pool_states(const torch::Tensor& states, const torch::Tensor& key_padding,
                          Pooling pooling) {
  if (pooling == Pooling::kCls) return states.select(1, 0);
  if (!key_padding.defined()) return states.mean(1);
  auto weights = key_padding.to(states.scalar_type()).unsqueeze(-1);  // [B, T, 1]
  return (states * weights).sum(1) / weights.sum(1).clamp_min(1.0);
}

ModelOutput SequenceClassifierImpl::forward(const torch::Tensor& tokens,
                                            const torch::Tensor& key_padding,
                                            const TapRequest& taps) {
  ForwardOptions options;
  options.taps = taps;
  options.taps.logits = false;  // the LM head is not needed
  const int64_t last = encoder_->options().n_layers - 1;
  options.taps.hidden_layers.insert(last);
  if (key_padding.defined()) {
    MaskSpec mask = encoder_->options().mask;
    mask.key_padding = key_padding;
    options.mask = mask;
  }
  ModelOutput out = encoder_->forward(tokens, options);
  torch::Tensor states = encoder_->final_norm(out.hidden.at(last));
  if (!taps.hidden_layers.count(last)) out.hidden.erase(last);
  out.logits = classifier(pool_states(states, key_padding, pooling_));
  return out;
}

}  // namespace attnlab
