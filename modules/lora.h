// LoRA (Hu et al., 2021) on a torch::nn::Linear: y = W x (+ b) + scale * B(A(dropout(x))) with the
// base W, b frozen and only A: [r, in] and B: [out, r] trained (scale = alpha / r, or alpha /
// sqrt(r) with rsLoRA). W + scale * B A is never formed while training.
//
// The adapter lives *inside* the Linear it adapts, as child modules, rather than as a wrapper that
// replaces it: the models hold their projections as typed torch::nn::Linear members (and the
// fused q/k/v GEMM reads q_proj->weight directly), so a module swapped in with replace_module
// would never be called. Children of the Linear give exactly PEFT's parameter names:
//   blocks.0.attn.q_proj.weight          the frozen base (name unchanged)
//   blocks.0.attn.q_proj.lora_A.weight   A, kaiming-uniform(a = sqrt(5)) as PEFT initialises it
//   blocks.0.attn.q_proj.lora_B.weight   B, zeros: the adapted model starts equal to the base
// plus a parameterless child `lora` (LoraPathImpl: scale and dropout, absent from state dicts).
// Every forward that calls a Linear goes through lora_linear(), which adds the low-rank path when
// the Linear carries an adapter and is the plain Linear otherwise.
#pragma once

#include <torch/arg.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/option_schema.h"
#include "modules/state_dict.h"

namespace attnlab {

// How one adapter is built.
struct LoraAdapterOptions {
  int64_t r = 16;
  double alpha = 32.0;
  double dropout = 0.0;
  bool use_rslora = false;
};

// alpha / r, or alpha / sqrt(r) (rsLoRA).
double lora_scale(const LoraAdapterOptions& options);

// The adapter's settings, a child of the adapted Linear without parameters or buffers.
struct LoraPathImpl : torch::nn::Module {
  LoraPathImpl(double scale, double dropout) : scale(scale), dropout(dropout) {}
  double scale;
  double dropout;
};
TORCH_MODULE(LoraPath);

// Adds lora_A, lora_B and lora to `linear` (A drawn from `generator`, on the base weight's device
// and dtype) and sets the base weight and bias to requires_grad=false. The Linear must not carry
// an adapter already.
void attach_lora(torch::nn::LinearImpl& linear, const LoraAdapterOptions& options,
                 at::Generator generator);

// True when `linear` carries an adapter.
bool has_lora(const torch::nn::LinearImpl& linear);

// scale * B(A(dropout(x))) of the adapter on `linear` (dropout in training mode only); an
// undefined tensor when the Linear has none.
torch::Tensor lora_delta(const torch::nn::LinearImpl& linear, const torch::Tensor& x);

// linear(x) plus its adapter's path when it has one.
torch::Tensor lora_linear(const torch::nn::Linear& linear, const torch::Tensor& x);

// The options of finetune=lora (configs/finetune/lora.yaml holds the same values; a test keeps
// them equal); trainer/finetune.h binds and applies them.
struct LoraOptions {
  TORCH_ARG(int64_t, r) = 16;
  TORCH_ARG(double, alpha) = 32.0;
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(std::vector<std::string>, target) = std::vector<std::string>{"q_proj", "k_proj",
                                                                         "v_proj", "out_proj"};
  TORCH_ARG(bool, use_rslora) = false;
  TORCH_ARG(std::vector<std::string>, modules_to_save) = std::vector<std::string>{};

 public:
  template <class V>
  void visit(V& v) {
    v("r", r(), "rank of the adapters (A: [r, in], B: [out, r])", config::greater_than(0));
    v("alpha", alpha(), "scale numerator: the low-rank path is multiplied by alpha / r",
      config::greater_than(0.0), config::finite());
    v("dropout", dropout(), "dropout on the adapters' input (training only)", config::at_least(0.0),
      config::less_than(1.0));
    v("target", target(),
      "Linear layers to adapt: names matched against the end of a Linear's name (q_proj matches "
      "blocks.3.attn.q_proj; globs allowed), or all-linear (every Linear of the blocks: attention "
      "and MLP, never the output head)",
      config::non_empty());
    v("use_rslora", use_rslora(), "rank-stabilised scale alpha / sqrt(r) instead of alpha / r");
    v("modules_to_save", modules_to_save(),
      "globs of parameter names that train fully beside the adapters (e.g. final_norm.*)");
  }

  LoraAdapterOptions adapter() const {
    LoraAdapterOptions out;
    out.r = r_;
    out.alpha = alpha_;
    out.dropout = dropout_;
    out.use_rslora = use_rslora_;
    return out;
  }
};

// The adapted Linear layers of a LoRA state dict ("blocks.0.attn.q_proj", ...), in name order.
std::vector<std::string> lora_module_names(const StateDict& weights);

// The weights with every adapter merged into its base (W + scale * B A, computed in float64)
// and the lora_A / lora_B tensors removed: the plain model that `export format=hf` writes.
StateDict merge_lora_weights(const StateDict& weights, const LoraOptions& options);

}  // namespace attnlab
