// The encoder classifier of `task=classification`: the `model=gpt` stack (embedding, blocks with
// attention from the registry, final RMSNorm) run with the configured mask — the task sets
// model.mask=bidirectional, making it an encoder — then pooled to one vector per sequence
// and mapped to class logits by a linear head:
//   pooling cls:  the final-norm state at position 0 (the task prepends the tokenizer's BOS as a
//                 [CLS] token);
//   pooling mean: the mean of the final-norm states over the real (non-padding) tokens.
// Parameter names: the GPT's own (embed.weight, blocks.<i>.*, final_norm.weight; the unused LM
// head is tied to embed.weight and has no key) plus classifier.weight [C, d_model] and
// classifier.bias [C]. So `init_from=<an LM run>` loads a pretrained encoder and leaves only the
// head fresh.
#pragma once

#include <torch/torch.h>

#include <string>

#include "modules/gpt.h"
#include "modules/model_output.h"

namespace attnlab {

enum class Pooling { kCls, kMean };

// "cls" | "mean"; UserError naming task.pooling otherwise.
Pooling parse_pooling(const std::string& name);

class SequenceClassifierImpl : public torch::nn::Module {
 public:
  SequenceClassifierImpl(const GptOptions& options, int64_t num_classes, Pooling pooling);

  // tokens [B, T]; key_padding [B, T] bool (true = real token) or undefined. Returns logits
  // [B, C] plus whatever hidden / attention-probability taps `taps` asks for (for loss terms
  // such as decorrelation); taps.logits is ignored (class logits are always produced).
  ModelOutput forward(const torch::Tensor& tokens, const torch::Tensor& key_padding,
                      const TapRequest& taps = {});

  // Keeps the wrapped GPT's own training flag (its embedding dropout) in step.
  void train(bool on = true) override;

  const GptOptions& options() const { return encoder_->options(); }
  int64_t num_classes() const { return num_classes_; }
  Pooling pooling() const { return pooling_; }
  GptImpl& encoder() { return *encoder_; }

  torch::nn::Linear classifier{nullptr};

 private:
  Gpt encoder_{nullptr};
  int64_t num_classes_;
  Pooling pooling_;
};
TORCH_MODULE(SequenceClassifier);

// Pools final-norm states [B, T, C] to [B, C] (see the pooling modes above).
torch::Tensor pool_states(const torch::Tensor& states, const torch::Tensor& key_padding,
                          Pooling pooling);

}  // namespace attnlab
